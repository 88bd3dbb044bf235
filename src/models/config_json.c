/* config_json.c — diffusers/transformers config.json text for sdc's model
 * configs, so that make-random's diffusers folders load in other tools too. */
#include "checkpoint.h"

#include <cJSON.h>
#include <stdlib.h>

static void add_ints(cJSON *o, const char *key, const int *v, int n) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
}

static void add_strs(cJSON *o, const char *key, const char *const *v, int n) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
}

static char *finish(cJSON *o) {
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

char *sdc_unet_config_json(const sdc_unet_config *c) {
    cJSON *o = cJSON_CreateObject();
    const char *down[UNET_MAX_LEVELS], *up[UNET_MAX_LEVELS];
    for (int i = 0; i < c->levels; i++) {
        down[i] = c->attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        up[c->levels - 1 - i] = c->attn[i] ? "CrossAttnUpBlock2D" : "UpBlock2D";
    }
    cJSON_AddStringToObject(o, "_class_name", "UNet2DConditionModel");
    cJSON_AddStringToObject(o, "act_fn", "silu");
    cJSON_AddNumberToObject(o, "attention_head_dim", c->heads); /* SD 1.x: means heads */
    add_ints(o, "block_out_channels", c->channels, c->levels);
    cJSON_AddFalseToObject(o, "center_input_sample");
    cJSON_AddNumberToObject(o, "cross_attention_dim", c->context_dim);
    add_strs(o, "down_block_types", down, c->levels);
    cJSON_AddNumberToObject(o, "downsample_padding", 1);
    cJSON_AddTrueToObject(o, "flip_sin_to_cos");
    cJSON_AddNumberToObject(o, "freq_shift", 0);
    cJSON_AddNumberToObject(o, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(o, "layers_per_block", c->layers_per_block);
    cJSON_AddNumberToObject(o, "mid_block_scale_factor", 1);
    cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(o, "norm_num_groups", c->groups);
    cJSON_AddNumberToObject(o, "out_channels", c->out_channels);
    cJSON_AddNumberToObject(o, "sample_size", 64);
    add_strs(o, "up_block_types", up, c->levels);
    return finish(o);
}

char *sdc_vae_config_json(const sdc_vae_config *c) {
    cJSON *o = cJSON_CreateObject();
    const char *down[VAE_MAX_LEVELS], *up[VAE_MAX_LEVELS];
    for (int i = 0; i < c->levels; i++) {
        down[i] = "DownEncoderBlock2D";
        up[i] = "UpDecoderBlock2D";
    }
    cJSON_AddStringToObject(o, "_class_name", "AutoencoderKL");
    cJSON_AddStringToObject(o, "act_fn", "silu");
    add_ints(o, "block_out_channels", c->channels, c->levels);
    add_strs(o, "down_block_types", down, c->levels);
    cJSON_AddNumberToObject(o, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(o, "latent_channels", c->latent_channels);
    cJSON_AddNumberToObject(o, "layers_per_block", c->layers_per_block);
    cJSON_AddNumberToObject(o, "norm_num_groups", c->groups);
    cJSON_AddNumberToObject(o, "out_channels", c->out_channels);
    cJSON_AddNumberToObject(o, "sample_size", 512);
    cJSON_AddNumberToObject(o, "scaling_factor", c->scaling_factor);
    add_strs(o, "up_block_types", up, c->levels);
    return finish(o);
}

char *sdc_clip_text_config_json(const sdc_clip_text_config *c) {
    cJSON *o = cJSON_CreateObject();
    const char *arch[] = {"CLIPTextModel"};
    add_strs(o, "architectures", arch, 1);
    cJSON_AddNumberToObject(o, "bos_token_id", 49406);
    cJSON_AddNumberToObject(o, "eos_token_id", 49407);
    cJSON_AddStringToObject(o, "hidden_act", "quick_gelu");
    cJSON_AddNumberToObject(o, "hidden_size", c->width);
    cJSON_AddNumberToObject(o, "intermediate_size", c->ffn);
    cJSON_AddNumberToObject(o, "layer_norm_eps", c->eps);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->max_pos);
    cJSON_AddStringToObject(o, "model_type", "clip_text_model");
    cJSON_AddNumberToObject(o, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(o, "pad_token_id", 1);
    cJSON_AddNumberToObject(o, "projection_dim", c->width);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab);
    return finish(o);
}
