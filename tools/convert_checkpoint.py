#!/usr/bin/python3
"""Convert a PyTorch Swin V1 checkpoint to qcal's HDF5 checkpoint layout.

    tools/convert_checkpoint.py IN.pt OUT.h5 [--card model.json] [flags]

IN is a file written by torch.save: a state_dict, or a dict holding one
under 'model' or 'state_dict' (Microsoft's and timm's training scripts, and
most others, wrap it so).  Two namings are accepted:

  torchvision   features.0.0.weight, features.1.0.attn.qkv.weight,
                features.2.reduction.weight, norm.weight, head.weight
  timm / Microsoft
                patch_embed.proj.*, patch_embed.norm.*,
                layers.<i>.blocks.<j>.{norm1,attn.qkv,attn.proj,
                attn.relative_position_bias_table,norm2,mlp.fc1,mlp.fc2}.*,
                layers.<i>.downsample.{reduction.weight,norm.*}, norm.*,
                head.* or head.fc.*

Microsoft's code and timm < 0.9 keep a stage's patch merging at the END of
layers[i]; timm >= 0.9 moves it to the START of layers[i+1].  Which one a
file uses is read from the tensor shapes (the merging's norm has 4x the
channels of the blocks it follows), never from the key names alone.

The concatenation order of the 2x2 neighbourhood inside PatchMerging is the
same in all three codebases: torchvision and Microsoft concatenate
x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] (rows first, then
columns); timm >= 0.9's reshape(B, H/2, 2, W/2, 2, C).permute(0, 1, 3, 4, 2, 5)
puts the column offset outside the row offset, which is the same order.  The
reduction weights therefore copy over unchanged (tests/convert checks this
numerically).

OUT gets one float32 dataset per torchvision state_dict key at the root,
int64 relative_position_index buffers (so torchvision's strict
load_state_dict accepts the file), a JSON root attribute `config` with
exactly the keys model/swin_config.c reads, and `input_folded` = "false".
The file is written under a temporary name and renamed into place.

Exit codes: 0 written, 1 bad input (unreadable file, missing/misshapen/extra
tensor, a flag contradicting the tensors), 2 usage error.
"""
import argparse
import json
import math
import os
import re
import sys
from collections import OrderedDict

PROG = 'convert_checkpoint.py'
EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
FORMAT_TAG = 'pytorch-state-dict/torchvision-swin'

# The config keys model/swin_config.c reads, in the order weights.h5 stores them.
CONFIG_KEYS = ('img_size', 'patch_size', 'in_chans', 'embed_dim', 'depths',
               'num_heads', 'window_size', 'mlp_ratio', 'num_classes', 'name',
               'mean', 'std', 'classes')
# Architecture keys that the tensors determine.
INFERRED_KEYS = ('patch_size', 'in_chans', 'embed_dim', 'depths', 'num_heads',
                 'window_size', 'mlp_ratio', 'num_classes')

EPILOG = """\
input layouts (detected from the key names and tensor shapes):
  torchvision       features.0.0.weight, features.1.0.attn.qkv.weight,
                    features.2.reduction.weight, norm.*, head.*
  timm / Microsoft  patch_embed.proj.*, patch_embed.norm.*,
                    layers.I.blocks.J.{norm1,attn.qkv,attn.proj,norm2,
                    mlp.fc1,mlp.fc2}.*, layers.I.downsample.{reduction,norm}.*,
                    norm.*, head.* or head.fc.*
  The state_dict may be the file itself or sit under 'model' / 'state_dict'.
  Microsoft's code and timm < 0.9 put a stage's patch merging at the end of
  layers[I], timm >= 0.9 at the start of layers[I+1]: the tensor shapes say
  which.  All three concatenate the 2x2 patches in torchvision's order.

output:
  One float32 dataset per torchvision state_dict key, int64
  relative_position_index buffers, a JSON root attribute `config` and
  input_folded = "false"; written to a temporary file and renamed.

architecture:
  Everything the tensor shapes determine (patch size, input channels,
  embed_dim, depths, heads, window size, mlp ratio, classes) is inferred.
  Flags and card values for those keys are checked against the tensors and
  a contradiction is an error.  img_size and the input normalisation
  (--mean/--std) are not in the tensors: they must come from a flag or the
  card; there is no ImageNet default.  A flag overrides the card.

card:
  A model card is a JSON object like shared/models/<model>/model.json; the
  keys img_size, patch_size, in_chans, embed_dim, depths, num_heads,
  window_size, mlp_ratio, num_classes, mean, std, name and classes are used,
  other keys (recipe, test_acc, ...) are ignored.

buffers:
  relative_position_index is checked against Swin's index and rewritten as
  torchvision's flat int64 buffer; attn_mask, relative_coords_table and
  num_batches_tracked are dropped.  Any other tensor the model does not hold
  is an error, as is a missing or misshapen one.  A 'module.' prefix
  (DataParallel) is stripped.  float16/bfloat16/float64 weights are stored
  as float32.

safety:
  IN is read with torch.load(weights_only=True).  Training checkpoints that
  pickle other objects (optimizer state, config classes) need
  --trust-pickle, which runs the file's pickle code: use it only on files
  you trust.

example:
  tools/convert_checkpoint.py swin_tiny_patch4_window7_224.pth swin-t.h5 \\
      --img-size 224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \\
      --name swin-t
  tools/convert_checkpoint.py state_dict.pt weights.h5 --card model.json

exit codes: 0 written, 1 bad input, 2 usage error
"""


class ConvertError(Exception):
    """Bad input: reported as one line, exit code 1."""


class UsageError(Exception):
    """A required option is missing or contradictory: exit code 2."""


# --------------------------------------------------------------------------
# Command line

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f'{PROG}: usage error: {message}', file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _int_list(text):
    try:
        out = [int(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated integers like 2,2,6,2, got {text!r}')
    if not out or any(v < 1 for v in out):
        raise argparse.ArgumentTypeError(f'expected positive integers, got {text!r}')
    return out


def _float_list(text):
    try:
        out = [float(v) for v in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated numbers like 0.485,0.456,0.406, got {text!r}')
    if not all(math.isfinite(v) for v in out):
        raise argparse.ArgumentTypeError(f'expected finite numbers, got {text!r}')
    return out


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    if v < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}')
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}')
    return v


def build_parser():
    p = _Parser(
        prog=PROG,
        description='Convert a PyTorch Swin V1 checkpoint (torchvision, timm or '
                    'Microsoft naming) to the HDF5 layout qcal loads.',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('input', metavar='IN.pt', help='torch.save file (.pt/.pth)')
    p.add_argument('output', metavar='OUT.h5', help='HDF5 checkpoint to write')
    p.add_argument('--card', metavar='JSON', help='model card with img_size, mean, std, ...')
    p.add_argument('--img-size', type=_positive_int, metavar='N',
                   help='square input side in pixels (required unless in the card)')
    p.add_argument('--patch-size', type=_positive_int, metavar='N',
                   help='inferred from the tensors; checked if given')
    p.add_argument('--in-chans', type=_positive_int, metavar='N',
                   help='inferred from the tensors; checked if given')
    p.add_argument('--embed-dim', type=_positive_int, metavar='N',
                   help='inferred from the tensors; checked if given')
    p.add_argument('--depths', type=_int_list, metavar='D,D,..', help='blocks per stage, e.g. 2,2,6,2 (inferred; checked if given)')
    p.add_argument('--num-heads', type=_int_list, metavar='H,H,..', help='heads per stage, e.g. 3,6,12,24 (inferred; checked if given)')
    p.add_argument('--window-size', type=_positive_int, metavar='N',
                   help='inferred from the tensors; checked if given')
    p.add_argument('--mlp-ratio', type=_positive_float, metavar='R',
                   help='inferred from the tensors; checked if given')
    p.add_argument('--num-classes', type=_positive_int, metavar='N',
                   help='inferred from the tensors; checked if given')
    p.add_argument('--mean', type=_float_list, metavar='M,M,M',
                   help='per-channel mean of [0,1] pixels (required unless in the card)')
    p.add_argument('--std', type=_float_list, metavar='S,S,S',
                   help='per-channel std of [0,1] pixels (required unless in the card)')
    p.add_argument('--name', help='model name (default: the card\'s, else OUT\'s file stem)')
    p.add_argument('--classes', metavar='A,B,..|@FILE',
                   help='class names in label order, comma-separated or @file with one per line')
    p.add_argument('--trust-pickle', action='store_true',
                   help='load IN with full unpickling (runs code from the file)')
    p.add_argument('-q', '--quiet', action='store_true', help='no summary line on success')
    return p


# --------------------------------------------------------------------------
# Reading the input

def _is_tensor(v):
    import torch
    return isinstance(v, torch.Tensor)


def load_state_dict(path, trust_pickle):
    """Returns (OrderedDict name -> tensor, description of the wrapping)."""
    import pickle
    import torch

    if not os.path.exists(path):
        raise ConvertError(f'{path}: no such file')
    if not os.path.isfile(path):
        raise ConvertError(f'{path}: not a regular file')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:
        msg = str(e)
        what = msg.rsplit('WeightsUnpickler error:', 1)[-1].strip()
        if not trust_pickle and what.startswith('Unsupported class'):
            raise ConvertError(
                f'{path}: holds pickled objects besides tensors ({what}); if you trust '
                f'the file, rerun with --trust-pickle')
        raise ConvertError(f'{path}: not a readable PyTorch checkpoint (torch.load: '
                           f'{what.splitlines()[0] if what else "unpickling failed"})')
    except Exception as e:  # torch raises many types for a non-torch file
        first = (str(e).splitlines() or [''])[0]
        raise ConvertError(f'{path}: not a readable PyTorch checkpoint '
                           f'(torch.load: {type(e).__name__}: {first})')

    wrapped = []
    while isinstance(obj, dict) and not any(_is_tensor(v) for v in obj.values()):
        for key in ('model', 'state_dict'):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                wrapped.append(key)
                break
        else:
            keys = ', '.join(sorted(str(k) for k in obj)[:8])
            raise ConvertError(f'{path}: no state_dict found: a dict without tensors and '
                               f'without a \'model\' or \'state_dict\' entry (keys: {keys})')
    if not isinstance(obj, dict):
        raise ConvertError(f'{path}: holds a {type(obj).__name__}, expected a state_dict '
                           f'(a dict of tensors)')
    sd = OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError(f'{path}: state_dict key {k!r} is not a string')
        if not _is_tensor(v):
            raise ConvertError(f'{path}: state_dict entry {k} is a {type(v).__name__}, '
                               f'expected a tensor')
        sd[k] = v
    if sd and all(k.startswith('module.') for k in sd):
        sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
        wrapped.append('module.')
    return sd, wrapped


# --------------------------------------------------------------------------
# Names: timm / Microsoft -> torchvision

_BLOCK_PARAMS = {
    'norm1.weight': 'norm1.weight', 'norm1.bias': 'norm1.bias',
    'attn.qkv.weight': 'attn.qkv.weight', 'attn.qkv.bias': 'attn.qkv.bias',
    'attn.proj.weight': 'attn.proj.weight', 'attn.proj.bias': 'attn.proj.bias',
    'attn.relative_position_bias_table': 'attn.relative_position_bias_table',
    'norm2.weight': 'norm2.weight', 'norm2.bias': 'norm2.bias',
    'mlp.fc1.weight': 'mlp.0.weight', 'mlp.fc1.bias': 'mlp.0.bias',
    'mlp.fc2.weight': 'mlp.3.weight', 'mlp.fc2.bias': 'mlp.3.bias',
}
_BLOCK_PARAMS_INV = {v: k for k, v in _BLOCK_PARAMS.items()}
_MERGE_PARAMS = ('reduction.weight', 'norm.weight', 'norm.bias')
_SIMPLE_TIMM = {
    'patch_embed.proj.weight': 'features.0.0.weight',
    'patch_embed.proj.bias': 'features.0.0.bias',
    'patch_embed.norm.weight': 'features.0.2.weight',
    'patch_embed.norm.bias': 'features.0.2.bias',
    'norm.weight': 'norm.weight', 'norm.bias': 'norm.bias',
}
_DROPPED_SUFFIXES = ('attn_mask', 'relative_coords_table', 'num_batches_tracked')
_V2_MARKERS = ('logit_scale', 'cpb_mlp')

_RE_TV_BLOCK = re.compile(r'^features\.(\d+)\.(\d+)\.(.+)$')
_RE_TV_MERGE = re.compile(r'^features\.(\d+)\.(reduction\.weight|norm\.weight|norm\.bias)$')
_RE_TIMM_BLOCK = re.compile(r'^layers\.(\d+)\.blocks\.(\d+)\.(.+)$')
_RE_TIMM_MERGE = re.compile(r'^layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)$')


def _shape(t):
    return tuple(int(d) for d in t.shape)


def _fmt_shape(shape):
    return '(' + ', '.join(str(d) for d in shape) + ')'


class Source:
    """The input's tensors renamed to torchvision keys.

    params: torchvision name -> tensor (parameters only)
    src: torchvision name -> the name in the input file (for messages)
    index: torchvision block prefix -> (input name, relative_position_index)
    masks: torchvision block prefix -> (input name, attn_mask)
    leftover: input names that map to nothing Swin V1 holds
    """

    def __init__(self, path, layout):
        self.path = path
        self.layout = layout
        self.params = OrderedDict()
        self.src = {}
        self.index = OrderedDict()
        self.masks = OrderedDict()
        self.dropped = []
        self.leftover = []
        self.merge_placement = None  # 'end' (Microsoft, timm < 0.9) or 'start' (timm >= 0.9)
        self.timm_head_fc = False

    def add(self, target, name, tensor):
        if target in self.params:
            raise ConvertError(f'{self.path}: {name} and {self.src[target]} both map to '
                               f'torchvision\'s {target}')
        self.params[target] = tensor
        self.src[target] = name

    def name_of(self, target):
        """The input-file name of a torchvision key (also for missing ones)."""
        if target in self.src:
            return self.src[target]
        if self.layout == 'torchvision':
            return target
        if target in _SIMPLE_TIMM.values():
            return next(k for k, v in _SIMPLE_TIMM.items() if v == target)
        if target.startswith('head.'):
            return ('head.fc.' if self.timm_head_fc else 'head.') + target[len('head.'):]
        m = _RE_TV_BLOCK.match(target)
        if m and int(m.group(1)) % 2 == 1:
            sub = _BLOCK_PARAMS_INV.get(m.group(3), m.group(3))
            return f'layers.{int(m.group(1)) // 2}.blocks.{m.group(2)}.{sub}'
        m = _RE_TV_MERGE.match(target)
        if m:
            f = int(m.group(1))
            layer = f // 2 if self.merge_placement == 'start' else f // 2 - 1
            return f'layers.{layer}.downsample.{m.group(2)}'
        return target


def _check_v2(path, names):
    for n in names:
        if any(marker in n for marker in _V2_MARKERS):
            raise ConvertError(f'{path}: {n} belongs to Swin V2 (scaled cosine attention); '
                               f'qcal converts Swin V1 only')


def rename(path, sd):
    """Map the input's keys to torchvision's; see Source."""
    names = list(sd)
    tv = [n for n in names if n.startswith('features.')]
    timm = [n for n in names if n.startswith(('patch_embed.', 'layers.'))]
    if tv and timm:
        raise ConvertError(f'{path}: mixes torchvision names ({tv[0]}) with timm/Microsoft '
                           f'names ({timm[0]})')
    if not tv and not timm:
        sample = ', '.join(names[:3]) if names else 'no tensors at all'
        raise ConvertError(f'{path}: not a Swin state_dict: no features.* (torchvision) or '
                           f'patch_embed.*/layers.* (timm, Microsoft) keys ({sample})')
    _check_v2(path, names)
    s = Source(path, 'torchvision' if tv else 'timm/microsoft')
    if tv:
        for n, t in sd.items():
            m = _RE_TV_BLOCK.match(n)
            if n.endswith('.attn.relative_position_index') and m:
                s.index[n[:-len('attn.relative_position_index')]] = (n, t)
            elif n.endswith(_DROPPED_SUFFIXES):
                s.dropped.append(n)
            else:
                s.add(n, n, t)
        return s

    if 'absolute_pos_embed' in sd:
        raise ConvertError(f'{path}: absolute_pos_embed (a model trained with ape=True) has '
                           f'no torchvision equivalent; cannot convert')
    if 'head.fc.weight' in sd or 'head.fc.bias' in sd:
        s.timm_head_fc = True
    merges = {}  # layer -> {param: (name, tensor)}
    for n, t in sd.items():
        m = _RE_TIMM_BLOCK.match(n)
        if m:
            layer, blk, sub = int(m.group(1)), int(m.group(2)), m.group(3)
            prefix = f'features.{2 * layer + 1}.{blk}.'
            if sub in _BLOCK_PARAMS:
                s.add(prefix + _BLOCK_PARAMS[sub], n, t)
            elif sub == 'attn.relative_position_index':
                s.index[prefix] = (n, t)
            elif sub == 'attn_mask':
                s.masks[prefix] = (n, t)
                s.dropped.append(n)
            elif n.endswith(_DROPPED_SUFFIXES):
                s.dropped.append(n)
            else:
                s.leftover.append(n)
            continue
        m = _RE_TIMM_MERGE.match(n)
        if m:
            merges.setdefault(int(m.group(1)), {})[m.group(2)] = (n, t)
            continue
        if n in _SIMPLE_TIMM:
            s.add(_SIMPLE_TIMM[n], n, t)
        elif n in ('head.weight', 'head.bias', 'head.fc.weight', 'head.fc.bias'):
            s.add('head.' + n.rsplit('.', 1)[1], n, t)
        elif n.endswith(_DROPPED_SUFFIXES):
            s.dropped.append(n)
        else:
            s.leftover.append(n)
    if merges:
        s.merge_placement = _merge_placement(s, merges)
        for layer, params in sorted(merges.items()):
            f = 2 * layer + 2 if s.merge_placement == 'end' else 2 * layer
            for sub, (n, t) in params.items():
                s.add(f'features.{f}.{sub}', n, t)
    elif s.timm_head_fc:
        s.merge_placement = 'start'
    return s


def _merge_placement(s, merges):
    """'end' if each layers.<i>.downsample follows layers.<i>'s blocks, 'start'
    if it precedes them; decided from the channel counts."""
    votes = {}
    for layer, params in sorted(merges.items()):
        name, t = params.get('norm.weight') or params.get('reduction.weight')
        width = _shape(t)[-1]  # 4 * the merged stage's channels
        own = s.params.get(f'features.{2 * layer + 1}.0.norm1.weight')
        prev = s.params.get(f'features.{2 * layer - 1}.0.norm1.weight') if layer > 0 else None
        own_c = _shape(own)[0] if own is not None else None
        prev_c = _shape(prev)[0] if prev is not None else None
        if own_c is not None and width == 4 * own_c:
            place = 'end'
        elif prev_c is not None and width == 4 * prev_c:
            place = 'start'
        else:
            own_txt = f'{own_c} channels' if own_c else 'no blocks'
            prev_txt = (f' nor of layers.{layer - 1} ({prev_c} channels)' if prev_c else '')
            raise ConvertError(
                f'{s.path}: cannot place {name} (shape {_fmt_shape(_shape(t))}): its '
                f'{width} channels are not 4x those of layers.{layer} ({own_txt}){prev_txt}')
        votes.setdefault(place, []).append(name)
    if len(votes) > 1:
        raise ConvertError(
            f'{s.path}: inconsistent patch merging placement: {votes["end"][0]} follows its '
            f'own layer\'s blocks (Microsoft / timm < 0.9) but {votes["start"][0]} precedes '
            f'them (timm >= 0.9)')
    return next(iter(votes))


# --------------------------------------------------------------------------
# Architecture from the tensors

def relative_position_index(ws):
    """Swin's index for a ws x ws window, flattened: (ws^4,) ints."""
    n = ws * ws
    out = []
    for i in range(n):
        hi, wi = divmod(i, ws)
        for j in range(n):
            hj, wj = divmod(j, ws)
            out.append((hi - hj + ws - 1) * (2 * ws - 1) + (wi - wj + ws - 1))
    return out


def _need(s, target):
    t = s.params.get(target)
    if t is None:
        raise ConvertError(f'{s.path}: missing tensor {s.name_of(target)}')
    return t


def _need_ndim(s, target, ndim, what):
    t = _need(s, target)
    if t.dim() != ndim:
        raise ConvertError(f'{s.path}: {s.name_of(target)} has shape {_fmt_shape(_shape(t))}, '
                           f'expected {ndim} dimensions ({what})')
    return t


def infer(s):
    """Architecture fields the tensors determine, and the evidence for each
    (a phrase naming the tensor) for error messages."""
    arch, why = {}, {}
    pw = _need_ndim(s, 'features.0.0.weight', 4, 'embed_dim, in_chans, patch, patch')
    e, cin, ph, pwid = _shape(pw)
    if ph != pwid:
        raise ConvertError(f'{s.path}: {s.name_of("features.0.0.weight")} has shape '
                           f'{_fmt_shape(_shape(pw))}: a {ph}x{pwid} patch; qcal needs square '
                           f'patches')
    pw_txt = f'{s.name_of("features.0.0.weight")} has shape {_fmt_shape(_shape(pw))}'
    arch['embed_dim'], why['embed_dim'] = e, pw_txt
    arch['in_chans'], why['in_chans'] = cin, pw_txt
    arch['patch_size'], why['patch_size'] = ph, pw_txt

    blocks = {}
    for name in s.params:
        m = _RE_TV_BLOCK.match(name)
        if m and int(m.group(1)) % 2 == 1:
            stage = int(m.group(1)) // 2
            blocks[stage] = max(blocks.get(stage, 0), int(m.group(2)) + 1)
    if not blocks:
        raise ConvertError(f'{s.path}: no transformer blocks (missing tensor '
                           f'{s.name_of("features.1.0.norm1.weight")} and the rest)')
    nstages = max(blocks) + 1
    for stage in range(nstages):
        if stage not in blocks:
            f = 2 * stage + 1
            raise ConvertError(f'{s.path}: stage {stage} has no blocks (missing tensor '
                               f'{s.name_of(f"features.{f}.0.norm1.weight")})')
    arch['depths'] = [blocks[i] for i in range(nstages)]
    why['depths'] = 'its blocks are ' + ', '.join(
        f'{s.name_of(f"features.{2 * i + 1}.0.norm1.weight").rsplit(".0.norm1", 1)[0]}.0'
        f'..{blocks[i] - 1}' for i in range(nstages))

    heads, window, wsrc = [], None, None
    for stage in range(nstages):
        for blk in range(blocks[stage]):
            target = f'features.{2 * stage + 1}.{blk}.attn.relative_position_bias_table'
            t = _need_ndim(s, target, 2, '(2*window-1)^2, heads')
            rows, nh = _shape(t)
            side = math.isqrt(rows)
            if side * side != rows or side % 2 == 0:
                raise ConvertError(f'{s.path}: {s.name_of(target)} has {rows} rows, expected '
                                   f'(2*window-1)^2 for some window size')
            ws = (side + 1) // 2
            if window is None:
                window, wsrc = ws, f'{s.name_of(target)} has shape {_fmt_shape(_shape(t))}'
            elif ws != window:
                raise ConvertError(
                    f'{s.path}: {s.name_of(target)} is for a {ws}x{ws} window but {wsrc} '
                    f'({window}x{window}); Microsoft/timm shrink the window of a stage '
                    f'smaller than it, torchvision pads instead: not convertible')
            if blk == 0:
                heads.append(nh)
                why.setdefault('num_heads', []).append(
                    f'{s.name_of(target)} has shape {_fmt_shape(_shape(t))}')
    arch['num_heads'] = heads
    why['num_heads_per_stage'] = why['num_heads']
    why['num_heads'] = '; '.join(why['num_heads'])
    arch['window_size'], why['window_size'] = window, wsrc

    fc1 = _need_ndim(s, 'features.1.0.mlp.0.weight', 2, 'hidden, dim')
    hidden = _shape(fc1)[0]
    ratio = hidden / e
    # torchvision sizes the MLP as int(dim * ratio): make sure that gives hidden back.
    while int(e * ratio) < hidden:
        ratio = math.nextafter(ratio, math.inf)
    arch['mlp_ratio'] = ratio
    why['mlp_ratio'] = (f'{s.name_of("features.1.0.mlp.0.weight")} has shape '
                        f'{_fmt_shape(_shape(fc1))} for {e} channels')

    head = _need_ndim(s, 'head.weight', 2, 'classes, channels')
    arch['num_classes'] = _shape(head)[0]
    why['num_classes'] = f'{s.name_of("head.weight")} has shape {_fmt_shape(_shape(head))}'
    return arch, why


# --------------------------------------------------------------------------
# Config: flags, card, tensors

def _card_value(card, key, path):
    v = card[key]
    if key in ('img_size', 'patch_size', 'in_chans', 'embed_dim', 'window_size', 'num_classes'):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConvertError(f'{path}: "{key}" must be a positive integer, found {v!r}')
    elif key in ('depths', 'num_heads'):
        if (not isinstance(v, list) or not v or
                any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v)):
            raise ConvertError(f'{path}: "{key}" must be a list of positive integers, '
                               f'found {v!r}')
    elif key == 'mlp_ratio':
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ConvertError(f'{path}: "mlp_ratio" must be a positive number, found {v!r}')
        v = float(v)
    elif key in ('mean', 'std'):
        if (not isinstance(v, list) or
                any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v)):
            raise ConvertError(f'{path}: "{key}" must be a list of numbers, found {v!r}')
        v = [float(x) for x in v]
    elif key == 'name':
        if not isinstance(v, str):
            raise ConvertError(f'{path}: "name" must be a string, found {v!r}')
    elif key == 'classes':
        if not isinstance(v, list) or any(not isinstance(x, str) for x in v):
            raise ConvertError(f'{path}: "classes" must be a list of strings')
    return v


def load_card(path):
    try:
        with open(path, encoding='utf-8') as f:
            card = json.load(f)
    except OSError as e:
        raise ConvertError(f'{path}: cannot read the card ({e.strerror})')
    except ValueError as e:
        raise ConvertError(f'{path}: card is not valid JSON ({e})')
    if not isinstance(card, dict):
        raise ConvertError(f'{path}: card must be a JSON object')
    return {k: _card_value(card, k, path) for k in CONFIG_KEYS if k in card}


def _read_classes(arg):
    if arg.startswith('@'):
        try:
            with open(arg[1:], encoding='utf-8') as f:
                names = [line.strip() for line in f if line.strip()]
        except OSError as e:
            raise ConvertError(f'{arg[1:]}: cannot read class names ({e.strerror})')
        return names
    return [c.strip() for c in arg.split(',')]


def _flag_name(key):
    return '--' + key.replace('_', '-')


def _fmt_value(v):
    if isinstance(v, list):
        return ','.join(_fmt_value(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def make_config(args, s, arch, why):
    card, card_path = {}, args.card
    if card_path:
        card = load_card(card_path)
    given = {}  # key -> (value, label)
    for key in CONFIG_KEYS:
        flag = getattr(args, key, None)
        if key == 'classes' and flag is not None:
            flag = _read_classes(flag)
        if flag is not None:
            given[key] = (flag, _flag_name(key))
        elif key in card:
            given[key] = (card[key], f'{card_path}: "{key}"')

    cfg = OrderedDict()
    for key in ('img_size',) + INFERRED_KEYS:
        if key == 'img_size':
            continue
        value = arch[key]
        if key in given:
            want, label = given[key]
            if key == 'mlp_ratio':
                # What matters is the MLP width torchvision builds: int(dim * ratio).
                dims = [arch['embed_dim'] << i for i in range(len(arch['depths']))]
                same = all(int(d * want) == int(d * value) for d in dims)
            else:
                same = want == value
            if not same:
                evidence = why[key]
                if key == 'num_heads' and len(want) == len(value):
                    i = next(i for i in range(len(value)) if want[i] != value[i])
                    evidence = (f'{why["num_heads_per_stage"][i]}: {value[i]} heads at '
                                f'stage {i}')
                raise ConvertError(f'{label} = {_fmt_value(want)} contradicts {s.path}: '
                                   f'{evidence} ({key} = {_fmt_value(value)})')
        cfg[key] = value

    for key in ('img_size', 'mean', 'std'):
        if key not in given:
            raise UsageError(f'{_flag_name(key)} is required (or "{key}" in the --card): it is '
                             f'not stored in the tensors and there is no default')
    img, img_label = given['img_size']
    if img < cfg['patch_size']:
        raise ConvertError(f'{img_label} = {img} is smaller than the '
                           f'{cfg["patch_size"]}x{cfg["patch_size"]} patch of {s.path}')
    for key in ('mean', 'std'):
        v, label = given[key]
        if len(v) != cfg['in_chans']:
            raise ConvertError(f'{label} has {len(v)} values, expected {cfg["in_chans"]} '
                               f'(one per input channel of {s.path})')
        if key == 'std' and not all(x > 0 for x in v):
            raise ConvertError(f'{label} = {_fmt_value(v)}: every std must be > 0')
    for stage, nh in enumerate(cfg['num_heads']):
        dim = cfg['embed_dim'] << stage
        if dim % nh:
            raise ConvertError(f'{s.path}: {nh} heads at stage {stage} do not divide its {dim} '
                               f'channels ({why["num_heads"]})')

    out = OrderedDict()
    out['img_size'] = img
    for key in INFERRED_KEYS:
        out[key] = cfg[key]
    if 'name' in given:
        out['name'] = given['name'][0]
    else:
        out['name'] = os.path.splitext(os.path.basename(args.output))[0]
    out['mean'] = list(given['mean'][0])
    out['std'] = list(given['std'][0])
    if 'classes' in given:
        classes, label = given['classes']
        if len(classes) != cfg['num_classes']:
            raise ConvertError(f'{label} lists {len(classes)} classes, expected '
                               f'{cfg["num_classes"]} ({why["num_classes"]})')
        out['classes'] = list(classes)
    # Keep the key order of CONFIG_KEYS (the order weights.h5 uses).
    return OrderedDict((k, out[k]) for k in CONFIG_KEYS if k in out)


# --------------------------------------------------------------------------
# The expected tensor table (mirrors model/swin_params.c)

def expected_tensors(cfg):
    """OrderedDict torchvision name -> shape, parameters only."""
    e, ws = cfg['embed_dim'], cfg['window_size']
    out = OrderedDict()
    out['features.0.0.weight'] = (e, cfg['in_chans'], cfg['patch_size'], cfg['patch_size'])
    out['features.0.0.bias'] = (e,)
    out['features.0.2.weight'] = (e,)
    out['features.0.2.bias'] = (e,)
    nstages = len(cfg['depths'])
    for stage in range(nstages):
        c, nh = e << stage, cfg['num_heads'][stage]
        hidden = int(c * cfg['mlp_ratio'])
        f = 2 * stage + 1
        for blk in range(cfg['depths'][stage]):
            p = f'features.{f}.{blk}.'
            out[p + 'norm1.weight'] = (c,)
            out[p + 'norm1.bias'] = (c,)
            out[p + 'attn.qkv.weight'] = (3 * c, c)
            out[p + 'attn.qkv.bias'] = (3 * c,)
            out[p + 'attn.proj.weight'] = (c, c)
            out[p + 'attn.proj.bias'] = (c,)
            out[p + 'attn.relative_position_bias_table'] = ((2 * ws - 1) ** 2, nh)
            out[p + 'norm2.weight'] = (c,)
            out[p + 'norm2.bias'] = (c,)
            out[p + 'mlp.0.weight'] = (hidden, c)
            out[p + 'mlp.0.bias'] = (hidden,)
            out[p + 'mlp.3.weight'] = (c, hidden)
            out[p + 'mlp.3.bias'] = (c,)
        if stage + 1 < nstages:
            out[f'features.{f + 1}.norm.weight'] = (4 * c,)
            out[f'features.{f + 1}.norm.bias'] = (4 * c,)
            out[f'features.{f + 1}.reduction.weight'] = (2 * c, 4 * c)
    cf = e << (nstages - 1)
    out['norm.weight'] = (cf,)
    out['norm.bias'] = (cf,)
    out['head.weight'] = (cfg['num_classes'], cf)
    out['head.bias'] = (cfg['num_classes'],)
    return out


def check_tensors(s, cfg):
    """Every expected tensor present, floating point, with the right shape;
    nothing left over; relative_position_index buffers equal to Swin's."""
    import torch

    want = expected_tensors(cfg)
    for name, shape in want.items():
        t = s.params.get(name)
        if t is None:
            raise ConvertError(f'{s.path}: missing tensor {s.name_of(name)}, expected shape '
                               f'{_fmt_shape(shape)}')
        if not t.is_floating_point():
            raise ConvertError(f'{s.path}: {s.name_of(name)} has dtype '
                               f'{str(t.dtype).replace("torch.", "")}, expected floating point')
        if _shape(t) != shape:
            raise ConvertError(f'{s.path}: {s.name_of(name)} has shape {_fmt_shape(_shape(t))}, '
                               f'expected {_fmt_shape(shape)} from the config')
    extra = [s.src[n] for n in s.params if n not in want] + s.leftover
    if extra:
        more = f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''
        raise ConvertError(f'{s.path}: unexpected tensor {extra[0]}{more}: not part of a '
                           f'Swin V1 model with this config')

    ws = cfg['window_size']
    ref = torch.tensor(relative_position_index(ws), dtype=torch.int64)
    for prefix, (name, t) in s.index.items():
        table = prefix + 'attn.relative_position_bias_table'
        if table not in want:
            raise ConvertError(f'{s.path}: unexpected tensor {name}: its block has no '
                               f'{s.name_of(table)}')
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ConvertError(f'{s.path}: {name} has dtype {str(t.dtype).replace("torch.", "")}'
                               f', expected an integer index')
        if t.numel() != ref.numel():
            raise ConvertError(f'{s.path}: {name} has shape {_fmt_shape(_shape(t))}, expected '
                               f'{ref.numel()} entries for a {ws}x{ws} window')
        flat = t.reshape(-1).to(torch.int64)
        bad = (flat != ref).nonzero()
        if len(bad):
            i = int(bad[0])
            raise ConvertError(f'{s.path}: {name}[{i}] = {int(flat[i])}, expected {int(ref[i])} '
                               f'(not Swin\'s relative position index)')
    check_masks(s, cfg)


def check_masks(s, cfg):
    """Microsoft's and timm < 0.9's attn_mask buffers hold one mask per window
    of the stage's token grid: their count pins img_size down, so a wrong
    --img-size is caught here."""
    ws, n = cfg['window_size'], cfg['window_size'] ** 2
    for prefix, (name, t) in s.masks.items():
        stage = int(prefix.split('.')[1]) // 2
        shape = _shape(t)
        if len(shape) != 3 or shape[1:] != (n, n):
            raise ConvertError(f'{s.path}: {name} has shape {_fmt_shape(shape)}, expected '
                               f'(windows, {n}, {n}) for a {ws}x{ws} window')
        grid = (cfg['img_size'] // cfg['patch_size']) >> stage
        want = (grid // ws) ** 2
        if shape[0] != want:
            side = math.isqrt(shape[0]) * ws
            raise ConvertError(
                f'--img-size/card img_size = {cfg["img_size"]} contradicts {s.path}: {name} '
                f'has shape {_fmt_shape(shape)}: {shape[0]} windows of {ws}x{ws} tokens, a '
                f'{side}x{side} grid at stage {stage}, where img_size {cfg["img_size"]} gives '
                f'{grid}x{grid} ({want} windows)')


# --------------------------------------------------------------------------
# Writing

def write_h5(path, s, cfg):
    """Write atomically: a temporary file beside path, fsync, rename."""
    import h5py
    import numpy as np
    import torch

    want = expected_tensors(cfg)
    index = np.asarray(relative_position_index(cfg['window_size']), dtype=np.int64)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConvertError(f'{path}: directory {directory} does not exist')
    tmp = os.path.join(directory, f'.{os.path.basename(path)}.tmp.{os.getpid()}')
    try:
        with h5py.File(tmp, 'w') as f:
            f.attrs['config'] = json.dumps(cfg)
            f.attrs['input_folded'] = 'false'
            f.attrs['format'] = FORMAT_TAG
            for name in want:
                t = s.params[name].detach().to(torch.float32).contiguous()
                f.create_dataset(name, data=t.numpy())
                if name.endswith('.attn.relative_position_bias_table'):
                    stem = name[:-len('relative_position_bias_table')]
                    f.create_dataset(stem + 'relative_position_index', data=index)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise ConvertError(f'{path}: cannot write ({e.strerror or e})')
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# --------------------------------------------------------------------------

def convert(args):
    """Returns a one-line summary; raises ConvertError / UsageError."""
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise UsageError('OUT.h5 must differ from IN.pt')
    sd, wrapped = load_state_dict(args.input, args.trust_pickle)
    s = rename(args.input, sd)
    arch, why = infer(s)
    cfg = make_config(args, s, arch, why)
    check_tensors(s, cfg)
    write_h5(args.output, s, cfg)
    nparams = sum(int(s.params[n].numel()) for n in expected_tensors(cfg))
    layout = s.layout
    if s.merge_placement:
        layout += (', merging at the end of layers[i]' if s.merge_placement == 'end'
                   else ', merging at the start of layers[i+1]')
    if wrapped:
        layout += ', under ' + '/'.join(repr(w) for w in wrapped)
    return (f'wrote {args.output}: {cfg["name"]} ({layout}), {nparams} parameters; img '
            f'{cfg["img_size"]} patch {cfg["patch_size"]} embed {cfg["embed_dim"]} depths '
            f'{_fmt_value(cfg["depths"])} heads {_fmt_value(cfg["num_heads"])} window '
            f'{cfg["window_size"]} mlp {cfg["mlp_ratio"]:g} classes {cfg["num_classes"]}; '
            f'dropped {len(s.dropped)} buffers')


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        summary = convert(args)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f'{PROG}: usage error: {e}', file=sys.stderr)
        return EXIT_USAGE
    except ConvertError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        print(summary)
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
