/* unet_config.c — diffusers' unet/config.json to sdc_unet_config, refusing
 * configs that are not SD 1.x-shaped with a message saying what they are. */
#include "unet.h"

#include "../weights/hf_config.h"

#include <string.h>

static sdc_status refuse(cJSON *j, sdc_err *err, const char *path, const char *why) {
    cJSON_Delete(j);
    return sdc_err_set(err, SDC_ERR_UNSUPPORTED, "%s: not an SD 1.x UNet: %s", path, why);
}

/* An int field that may also be a list of equal ints (attention_head_dim). */
static bool int_or_uniform_list(const cJSON *v, int *out) {
    if (cJSON_IsNumber(v)) {
        *out = (int)v->valuedouble;
        return v->valuedouble == (double)*out;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1) return false;
    const cJSON *e;
    bool first = true;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e) || (!first && (int)e->valuedouble != *out)) return false;
        *out = (int)e->valuedouble;
        first = false;
    }
    return true;
}

sdc_status sdc_unet_config_from_json(const char *path, sdc_unet_config *cfg, sdc_err *err) {
    cJSON *j = sdc_json_load(path, err);
    if (!j) return err->code;
    sdc_unet_config c = sdc_unet_sd15;
    sdc_status s;
    if ((s = sdc_json_int(j, path, "in_channels", 1, 64, 4, &c.in_channels, err)) ||
        (s = sdc_json_int(j, path, "out_channels", 1, 64, 4, &c.out_channels, err)) ||
        (s = sdc_json_int(j, path, "layers_per_block", 1, UNET_MAX_LAYERS, 2,
                          &c.layers_per_block, err)) ||
        (s = sdc_json_int(j, path, "norm_num_groups", 1, 1024, 32, &c.groups, err)) ||
        (s = sdc_json_float(j, path, "norm_eps", 1e-12, 1, 1e-5, &c.norm_eps, err))) {
        cJSON_Delete(j);
        return s;
    }
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(j, "cross_attention_dim");
    if (!int_or_uniform_list(ctx, &c.context_dim) || c.context_dim < 1)
        return refuse(j, err, path, "cross_attention_dim must be one positive integer");
    if (c.in_channels != 4)
        return refuse(j, err, path, c.in_channels == 9 ? "9 input channels (an inpainting UNet)"
                                                       : "in_channels is not 4");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "use_linear_projection")))
        return refuse(j, err, path, "use_linear_projection is set (an SD 2.x UNet)");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(j, "addition_embed_type");
    if (add && !cJSON_IsNull(add)) return refuse(j, err, path, "addition_embed_type (SDXL)");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, "class_embed_type");
    if (cls && !cJSON_IsNull(cls)) return refuse(j, err, path, "class_embed_type is set");
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(j, "transformer_layers_per_block");
    int tlv = 1;
    if (tl && (!int_or_uniform_list(tl, &tlv) || tlv != 1))
        return refuse(j, err, path, "transformer_layers_per_block is not 1 (SDXL)");
    /* SD 1.x configs say attention_head_dim: 8 and mean 8 heads; a newer
     * num_attention_heads field, when set, says the same thing correctly. */
    const cJSON *nh = cJSON_GetObjectItemCaseSensitive(j, "num_attention_heads");
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "attention_head_dim");
    if (!(nh && !cJSON_IsNull(nh) ? int_or_uniform_list(nh, &c.heads)
                                  : int_or_uniform_list(hd, &c.heads)) || c.heads < 1)
        return refuse(j, err, path, "attention_head_dim must give one head count (SD 2.x "
                                    "uses per-level head dims)");
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(j, "block_out_channels");
    const cJSON *dbt = cJSON_GetObjectItemCaseSensitive(j, "down_block_types");
    int n = cJSON_GetArraySize(boc);
    if (!cJSON_IsArray(boc) || n < 1 || n > UNET_MAX_LEVELS || !cJSON_IsArray(dbt) ||
        cJSON_GetArraySize(dbt) != n)
        return refuse(j, err, path, "block_out_channels / down_block_types malformed");
    c.levels = n;
    for (int i = 0; i < n; i++) {
        const cJSON *ch = cJSON_GetArrayItem(boc, i), *ty = cJSON_GetArrayItem(dbt, i);
        if (!cJSON_IsNumber(ch) || ch->valuedouble < 1 || ch->valuedouble > 65536 ||
            ch->valuedouble != (double)(int)ch->valuedouble || !cJSON_IsString(ty))
            return refuse(j, err, path, "block_out_channels / down_block_types malformed");
        c.channels[i] = (int)ch->valuedouble;
        if (strcmp(ty->valuestring, "CrossAttnDownBlock2D") == 0) c.attn[i] = true;
        else if (strcmp(ty->valuestring, "DownBlock2D") == 0) c.attn[i] = false;
        else return refuse(j, err, path, "unknown down block type");
        if (c.channels[i] % c.groups || (c.attn[i] && c.channels[i] % c.heads))
            return refuse(j, err, path, "channels do not divide into groups and heads");
    }
    cJSON_Delete(j);
    *cfg = c;
    return SDC_OK;
}
