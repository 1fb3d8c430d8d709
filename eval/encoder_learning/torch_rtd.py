"""An independent ELECTRA (replaced-token detection) in plain PyTorch,
sharing nothing with selfsup but the token ids: torch's nn.TransformerEncoder
(pre-LN, GELU) for the generator and the discriminator, shared token and
position embeddings, the generator's output tied to the token embeddings,
its own data sampling (random windows of the token stream), its own BERT
masking and its own sampling of replacements. It answers "what discriminator
accuracy does a correct ELECTRA reach at this size and step count?".

  /usr/bin/python3 torch_rtd.py DUMP --steps 1000 --lr 1e-3 --B 32 --mask-prob 0.3 --gen-size 0.5

DUMP is a dump_mlm output directory (train.ids, val.ids). Prints, at each
evaluation, the generator's val masked loss/accuracy and the discriminator's
val accuracy, base rate (share of tokens not replaced) and AUC.
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from torch_mlm import adamw, common_args, load_data, set_lr, train_batch, update


def encoder(C, NH, Fd, L):
    layer = nn.TransformerEncoderLayer(C, NH, Fd, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    return nn.Sequential(nn.TransformerEncoder(layer, L, enable_nested_tensor=False), nn.LayerNorm(C))


class Electra(nn.Module):
    def __init__(self, V, C, L, NH, Fd, T, gs):
        super().__init__()
        gc, gh, gf = int(C * gs), max(1, int(NH * gs)), int(Fd * gs)
        self.tok = nn.Embedding(V, C)
        self.pos = nn.Embedding(T, C)
        self.gen_in = nn.Linear(C, gc)                 # embeddings -> generator width
        self.gen = encoder(gc, gh, gf, L)
        self.gen_head = nn.Sequential(nn.Linear(gc, C), nn.GELU(), nn.LayerNorm(C))
        self.gen_bias = nn.Parameter(torch.zeros(V))
        self.disc = encoder(C, NH, Fd, L)
        self.disc_head = nn.Sequential(nn.Linear(C, C), nn.GELU(), nn.Linear(C, 1))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def embed(self, x):
        return self.tok(x) + self.pos(torch.arange(x.shape[1]))[None]

    def gen_logits(self, x):
        return self.gen_head(self.gen(self.gen_in(self.embed(x)))) @ self.tok.weight.t() + self.gen_bias

    def disc_logits(self, x):
        return self.disc_head(self.disc(self.embed(x))).squeeze(-1)


def corrupt(m, x, t, g):
    """Generator loss/accuracy on the masked positions, and the discriminator's
    input with sampled replacements (no gradient through the sampling)."""
    sel = t >= 0
    lg = m.gen_logits(x)[sel]
    gl = F.cross_entropy(lg, t[sel])
    acc = float((lg.argmax(-1) == t[sel]).double().mean())
    with torch.no_grad():
        s = torch.multinomial(F.softmax(lg.float(), -1), 1, generator=g).squeeze(-1)
    d = x.clone()                      # unchosen positions hold the original token
    d[sel] = s
    orig = torch.where(sel, t, x)
    return gl, acc, d, (d != orig).float()


def auc(scores, labels):
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / max(1, n1 * n0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--steps", type=int, default=1000)
    common_args(ap, lr=1e-3, warmup=100, B=32, mask_prob=0.3)
    ap.add_argument("--gen-size", type=float, default=0.5)
    ap.add_argument("--disc-weight", type=float, default=50.0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    tr, vx, vt = load_data(a)
    m = Electra(a.V, a.C, a.L, a.NH, a.F, a.T, a.gen_size)
    opt = adamw(m, a.lr)
    g = torch.Generator().manual_seed(a.seed + 1)
    for s in range(a.steps):
        set_lr(opt, a, s)
        x, t = train_batch(tr, a, g)
        gl, _, d, lab = corrupt(m, x, t, g)
        update(opt, m, gl + a.disc_weight * F.binary_cross_entropy_with_logits(m.disc_logits(d), lab))
        if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
            with torch.no_grad():
                vgl, vacc, vd, vlab = corrupt(m, vx, vt, torch.Generator().manual_seed(99))
                z = m.disc_logits(vd).flatten().numpy()
                y = vlab.flatten().numpy()
                dacc = float(((z > 0) == (y == 1)).mean())
            print(f"step {s + 1:5d} gen val loss {float(vgl):.4f} acc {vacc:.4f} | disc acc {dacc:.4f} "
                  f"(base rate {1 - y.mean():.4f}) AUC {auc(z, y):.4f}", flush=True)


if __name__ == "__main__":
    main()
