"""The names constructor parameters go by, read by assume.py's rules: widths (`dim`, `d_model`,
`*_channels`), counts, head counts, sequence lengths, image and patch sizes, vocabularies, classes,
ratios, rates, module-valued and string-valued parameters, and the config parameters."""

from __future__ import annotations

import re

CONFIG_NAMES = ("config", "configs", "cfg", "conf", "hparams", "hp", "hps", "args", "params", "opt", "opts",
                "settings", "model_args", "model_config", "model_cfg")
NOT_WIDTH = re.compile(r"(image|img|patch|kernel|window|vocab|batch|pool|stride|step|sample|max|seq|context|"
                       r"block_size|num_class|n_class|buffer|cache|chunk|grid|input_size|resolution|fmap)")
WIDTH = re.compile(r"^(dim|dims|d|c|ch|c\d|width|widths|hidden|channels|channel|chans|planes|inplanes|in_planes|"
                   r"outplanes|inp|oup|inc|outc|nin|nout|c_in|c_out|n_in|n_out|ni|no|nc|features|nf|ngf|ndf|nz|"
                   r"d_model|d_ff|d_k|d_v|d_head|d_inner|d_hidden|d_embed|n_embd|n_embed|n_hidden|n_inner|nhid|ninp|"
                   r"hidden_size|intermediate_size|emb|latent|units|filters|size|feat|feats|nfeat|nfeats)$|"
                   r"(_dim|_dims|_channels|_chans|_ch|_features|_feat|_feats|_size|_width|_planes|_filters|_units|_hidden)$|"
                   r"^(dim_|in_|out_|hidden_|embed|num_channels|n_channels|num_features|num_hidden|inner_)")
# Channels of an image in or out, as super-resolution and GAN code names them (`in_channels` is every block's).
COLOURS = re.compile(r"^(in_nc|input_nc|num_in_ch|img_channels|image_channels|n_colors|n_colours|colors|colours|"
                     r"img_ch|image_ch|input_channels|in_chans|num_input_channels|out_nc|output_nc|num_out_ch|"
                     r"out_chans|output_channels|num_output_channels)$")
COUNT = re.compile(r"(depth|depths|layers|n_layer|blocks|n_block|num_block|stages|repeats|num_stages|n_res|"
                   r"num_res|num_experts|n_experts|levels)$")
UNSET_COUNT = re.compile(r"^(depth|num_layers|n_layers|n_layer|num_blocks|n_blocks|layers|blocks)$")
HEADS = re.compile(r"(^|_)(heads|num_heads|n_head|n_heads|nhead|nheads|num_attention_heads|attn_heads|groups|"
                   r"num_groups|n_groups)$")
KV_HEADS = re.compile(r"kv_heads|key_value_heads|n_kv|num_kv")
SEQ = re.compile(r"^(seq_len|seq_length|sequence_length|max_len|max_length|max_seq_len|max_seq_length|block_size|"
                 r"context_length|context_size|max_position_embeddings|n_ctx|n_positions|num_positions|"
                 r"num_tokens_max|max_tokens|length|seqlen|max_seqlen|num_frames|frames|max_pos|max_positions)$")
IMAGE = re.compile(r"^(image_size|img_size|input_size|resolution|image_res|img_res|image_height|image_width|"
                   r"img_height|img_width|height|width_px|input_resolution|image_shape)$")
VOCAB = re.compile(r"(vocab|num_tokens|n_token|ntoken|ntokens|num_embeddings|n_vocab|num_words|vocabulary)")
CLASSES = re.compile(r"^(num_classes|n_classes|classes|num_labels|out_classes|n_class|num_class|nclass|"
                     r"num_outputs|n_outputs)$")
RATIO = re.compile(r"(ratio|mult|expansion|expand|factor|multiplier)$")
RATE = re.compile(r"(dropout|drop|rate|prob|^p$|_p$|(^|_)eps$|epsilon|alpha|beta|gamma|scale|temperature|tau|momentum)")
# Strings named for what they choose, with a value every library that takes one accepts
# (diffusers' and transformers' activation tables, nn.RNN's nonlinearity; nn.Upsample's modes).
NAMED_STRINGS = ((re.compile(r"(^|_)(act|act_fn|activation|activation_fn|nonlinearity|non_linearity)$"), "relu"),
                 (re.compile(r"(upsample|interpolation|resample)_(fn|mode)$"), "nearest"))
ACTIVATION = re.compile(r"(^|_)(act|act_fn|activation|activation_fn|nonlinearity|non_linearity|act_layer)$")
MODULE = re.compile(r"^(fn|func|module|net|layer|model|backbone|body|inner|submodule|sublayer|m|wrapped|transformer|encoder|decoder)$")
SMALL = {"kernel_size": 3, "kernel": 3, "k": 3, "stride": 1, "padding": 1, "dilation": 1, "top_k": 1,
         "num_experts_per_tok": 1, "patch_stride": 1,
         # named `*_rate` yet no probability: a dilation's growth (`dilation_rate ** i`), audio's samples a second
         "dilation_rate": 2, "sample_rate": 16000, "sampling_rate": 16000}
# Lengths cut from the sequence (`seg_len`, `patch_len`): they go with the made-up one, not a command line's.
CUT = re.compile(r"(^|_)(seg|patch|period|window|stride|chunk|kernel)")
