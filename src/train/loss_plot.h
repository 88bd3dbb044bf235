/* loss_plot.h — a training run's loss curve as a PNG, drawn by a tiny
 * rasteriser of its own: each step's loss in grey, their moving average in
 * blue, a grid, and the step and loss ranges in a built-in 3x5 pixel font.
 *
 *     sdc_ti_loss_plot("out/loss.png", losses, n_steps, &err);  // atomic write
 */
#ifndef SDC_TRAIN_LOSS_PLOT_H
#define SDC_TRAIN_LOSS_PLOT_H

#include "sdc.h"

#define SDC_LOSS_PLOT_W 640
#define SDC_LOSS_PLOT_H 360

/* rgb [SDC_LOSS_PLOT_H, SDC_LOSS_PLOT_W, 3] of loss[0..n) (step i + 1 has
 * loss[i]); non-finite values are left out. n may be 0 (empty axes). */
void sdc_ti_loss_plot_draw(const float *loss, int n, uint8_t *rgb);
/* The same, written as a PNG at path atomically. */
sdc_status sdc_ti_loss_plot(const char *path, const float *loss, int n, sdc_err *err);

#endif
