"""An independent masked LM in plain PyTorch, sharing nothing with selfsup
but the token ids: torch's own nn.TransformerEncoder (pre-LN, GELU),
learned position embeddings, an output layer tied to the token embeddings,
its own data sampling (random windows of the token stream, documents joined
by their separator, no packing or padding) and its own BERT masking. It
answers "what does a correct MLM reach at this size and step count?".

  /usr/bin/python3 torch_mlm.py DUMP --steps 800 --lr 3e-3 [--mask-prob 0.15] [--init pytorch|gpt2]

DUMP is a dump_mlm output directory (train.ids, val.ids). Prints the val
masked loss/accuracy (fixed val masks) and the unigram baseline on the same
targets.
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SPECIAL = 6          # ids 0..5: <|endoftext|> [PAD] [CLS] [SEP] [MASK] [UNK]
MASK_ID = 4


class MLM(nn.Module):
    def __init__(self, V, C, L, NH, Fd, T, gpt2_init):
        super().__init__()
        self.tok = nn.Embedding(V, C)
        self.pos = nn.Embedding(T, C)
        layer = nn.TransformerEncoderLayer(C, NH, Fd, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, L, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(C)
        self.head = nn.Sequential(nn.Linear(C, C), nn.GELU(), nn.LayerNorm(C))
        self.bias = nn.Parameter(torch.zeros(V))
        if gpt2_init:
            for n, p in self.named_parameters():
                if p.dim() == 2:
                    nn.init.normal_(p, std=0.02)
        else:  # PyTorch defaults, except embeddings N(0,1) -> scaled like BERT's
            nn.init.normal_(self.tok.weight, std=0.02)
            nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, x):
        h = self.tok(x) + self.pos(torch.arange(x.shape[1]))[None]
        h = self.ln(self.enc(h))
        return self.head(h) @ self.tok.weight.t() + self.bias


def mask_batch(ids, gen, V, p):
    """BERT 80/10/10 on ordinary tokens; targets -1 elsewhere."""
    ordinary = ids >= SPECIAL
    chosen = (torch.rand(ids.shape, generator=gen) < p) & ordinary
    r = torch.rand(ids.shape, generator=gen)
    x = ids.clone()
    x[chosen & (r < 0.8)] = MASK_ID
    rnd = chosen & (r >= 0.8) & (r < 0.9)
    x[rnd] = torch.randint(SPECIAL, V, (int(rnd.sum()),), generator=gen)
    return x, torch.where(chosen, ids, torch.full_like(ids, -1))


def windows(ids, starts, T):
    return torch.stack([ids[s:s + T] for s in starts])


def common_args(ap, lr, warmup, B, mask_prob):
    """Size, batch and schedule flags shared with torch_rtd.py."""
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--B", type=int, default=B)
    for flag, default in (("--T", 64), ("--C", 64), ("--L", 2), ("--NH", 2), ("--F", 128), ("--V", 512)):
        ap.add_argument(flag, type=int, default=default)
    ap.add_argument("--mask-prob", type=float, default=mask_prob)


def adamw(m, lr):
    """selfsup's AdamW groups: weight decay on matrices except the embeddings."""
    decayed = lambda n, p: p.dim() == 2 and not n.startswith(("tok", "pos"))
    decay = [p for n, p in m.named_parameters() if decayed(n, p)]
    other = [p for n, p in m.named_parameters() if not decayed(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def set_lr(opt, a, s):
    """Linear warmup, then cosine from lr to lr/10 (selfsup's schedule)."""
    lr = a.lr * (s + 1) / a.warmup if s < a.warmup else \
        a.lr / 10 + 0.45 * a.lr * (1 + math.cos(math.pi * (s - a.warmup) / (a.steps - a.warmup)))
    for pg in opt.param_groups:
        pg["lr"] = lr


def load_data(a):
    """The dump's train ids, and a fixed val set: non-overlapping windows,
    masks from a fixed generator."""
    load = lambda n: torch.from_numpy(np.fromfile(os.path.join(a.dump, n), dtype=np.int32).astype(np.int64))
    tr, va = load("train.ids"), load("val.ids")
    vg = torch.Generator().manual_seed(1234)
    vx, vt = mask_batch(windows(va, range(0, len(va) - a.T, a.T), a.T), vg, a.V, a.mask_prob)
    return tr, vx, vt


def train_batch(tr, a, g):
    """B random windows of the train ids, masked."""
    starts = torch.randint(0, len(tr) - a.T, (a.B,), generator=g).tolist()
    return mask_batch(windows(tr, starts, a.T), g, a.V, a.mask_prob)


def update(opt, m, loss):
    """One AdamW step with clipping at 1.0 (selfsup's default)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--steps", type=int, default=800)
    common_args(ap, lr=3e-3, warmup=10, B=8, mask_prob=0.15)
    ap.add_argument("--init", default="gpt2", choices=["gpt2", "pytorch"])
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    tr, vx, vt = load_data(a)
    cnt = torch.bincount(tr[tr >= SPECIAL], minlength=a.V).double() + 0.5
    logp = (cnt / cnt.sum()).log()
    sel = vt >= 0
    print(f"val: {int(sel.sum())} masked targets, unigram CE {float(-logp[vt[sel]].mean()):.4f}, "
          f"unigram-argmax acc {float((vt[sel] == logp.argmax()).double().mean()):.4f}")
    m = MLM(a.V, a.C, a.L, a.NH, a.F, a.T, a.init == "gpt2")
    opt = adamw(m, a.lr)
    g = torch.Generator().manual_seed(a.seed + 1)
    for s in range(a.steps):
        set_lr(opt, a, s)
        x, t = train_batch(tr, a, g)
        loss = F.cross_entropy(m(x).reshape(-1, a.V), t.reshape(-1), ignore_index=-1)
        update(opt, m, loss)
        if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
            with torch.no_grad():
                lg = m(vx)[sel]
                vl = float(F.cross_entropy(lg, vt[sel]))
                acc = float((lg.argmax(-1) == vt[sel]).double().mean())
            print(f"step {s + 1:5d} train {float(loss):.4f} val masked loss {vl:.4f} acc {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
