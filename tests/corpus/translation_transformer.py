"""Translation with nn.Transformer: source and target token embeddings, sinusoidal positions,
the full encoder-decoder, and a generator to target-vocabulary logits. Configured by a plain
class of constants."""

import math

import torch
import torch.nn as nn


class Config:
    src_vocab = 8000
    tgt_vocab = 6000
    emb_size = 256
    nhead = 8
    ffn_hid_dim = 512
    num_encoder_layers = 3
    num_decoder_layers = 3
    dropout = 0.1


class PositionalEncoding(nn.Module):
    def __init__(self, emb_size, dropout, maxlen=5000):
        super().__init__()
        den = torch.exp(-torch.arange(0, emb_size, 2) * math.log(10000) / emb_size)
        pos = torch.arange(0, maxlen).reshape(maxlen, 1)
        pos_embedding = torch.zeros((maxlen, emb_size))
        pos_embedding[:, 0::2] = torch.sin(pos * den)
        pos_embedding[:, 1::2] = torch.cos(pos * den)
        pos_embedding = pos_embedding.unsqueeze(-2)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pos_embedding", pos_embedding)

    def forward(self, token_embedding):
        return self.dropout(token_embedding + self.pos_embedding[: token_embedding.size(0), :])


class TokenEmbedding(nn.Module):
    def __init__(self, vocab_size, emb_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size)
        self.emb_size = emb_size

    def forward(self, tokens):
        return self.embedding(tokens.long()) * math.sqrt(self.emb_size)


class Seq2SeqTransformer(nn.Module):
    def __init__(self, cfg=Config):
        super().__init__()
        self.transformer = nn.Transformer(d_model=cfg.emb_size, nhead=cfg.nhead,
                                          num_encoder_layers=cfg.num_encoder_layers,
                                          num_decoder_layers=cfg.num_decoder_layers,
                                          dim_feedforward=cfg.ffn_hid_dim, dropout=cfg.dropout)
        self.generator = nn.Linear(cfg.emb_size, cfg.tgt_vocab)
        self.src_tok_emb = TokenEmbedding(cfg.src_vocab, cfg.emb_size)
        self.tgt_tok_emb = TokenEmbedding(cfg.tgt_vocab, cfg.emb_size)
        self.positional_encoding = PositionalEncoding(cfg.emb_size, dropout=cfg.dropout)

    def forward(self, src, trg):
        src_emb = self.positional_encoding(self.src_tok_emb(src))
        tgt_emb = self.positional_encoding(self.tgt_tok_emb(trg))
        tgt_mask = self.transformer.generate_square_subsequent_mask(trg.size(0))
        outs = self.transformer(src_emb, tgt_emb, tgt_mask=tgt_mask)
        return self.generator(outs)
