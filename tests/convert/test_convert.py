#!/usr/bin/python3
"""tools/convert_checkpoint.py against the shared fixtures and torchvision.

    test_convert.py CKPT_TOOL CONVERTER     (meson passes both; env QCAL_SHARED)

- shared swin-micro-cifar10/state_dict.pt + model.json converts to a file
  whose every tensor (bytes, dtype, shape) and config string equal
  weights.h5's;
- the same weights renamed to Microsoft's layout (under 'model', merging at
  the end of layers[i], (N, N) relative_position_index, attn_mask buffers),
  timm < 0.9's (with a DataParallel 'module.' prefix) and timm >= 0.9's
  (merging at the start of layers[i+1], head.fc) convert to identical
  tensors; so does swin-t-structure (4 stages, window 7) from flags alone;
- the three PatchMerging concatenation orders agree (and a wrong order is
  caught);
- the converted file loads in torchvision with strict=True and reproduces
  reference.h5's logits; the C loader (CKPT_TOOL) reads it bit-exactly
  equal to weights.h5; swin_model_save's output loads in torchvision too;
- bad inputs fail with exit code 1 (2 for usage) and one line naming the
  tensor or flag, and leave no output or temporary file behind.
"""
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections import OrderedDict

import h5py
import numpy as np
import torch
from torchvision.models.swin_transformer import SwinTransformer, _patch_merging_pad

CKPT_TOOL = CONVERTER = None
SHARED = os.environ.get('QCAL_SHARED', os.path.join(os.path.dirname(__file__), '../../../shared'))
MICRO = os.path.join(SHARED, 'models', 'swin-micro-cifar10')
STRUCT = os.path.join(SHARED, 'models', 'swin-t-structure')
SOURCE = os.environ.get('QCAL_SOURCE', os.path.join(os.path.dirname(__file__), '../..'))
TINY_GOOD = os.path.join(SOURCE, 'tests', 'convert', 'fixtures', 'good.h5')
conv = None  # the converter, imported as a module


def load_converter(path):
    spec = importlib.util.spec_from_file_location('convert_checkpoint', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(*argv):
    """Run the converter in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = conv.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def h5_tensors(path):
    with h5py.File(path, 'r') as f:
        return {k: f[k][()] for k in f}, dict(f.attrs)


def assert_same_tensors(test, got_path, ref_path):
    got, _ = h5_tensors(got_path)
    ref, _ = h5_tensors(ref_path)
    test.assertEqual(sorted(got), sorted(ref))
    for k in ref:
        test.assertEqual(got[k].dtype, ref[k].dtype, k)
        test.assertEqual(got[k].shape, ref[k].shape, k)
        test.assertEqual(got[k].tobytes(), ref[k].tobytes(), k)
    return len(ref)


def torchvision_model(cfg, path):
    """torchvision SwinTransformer for cfg with path's tensors, strict load."""
    model = SwinTransformer(
        patch_size=[cfg['patch_size']] * 2, embed_dim=cfg['embed_dim'], depths=cfg['depths'],
        num_heads=cfg['num_heads'], window_size=[cfg['window_size']] * 2,
        mlp_ratio=cfg['mlp_ratio'], num_classes=cfg['num_classes'])
    with h5py.File(path, 'r') as f:
        sd = {k: torch.from_numpy(f[k][()]) for k in f}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def micro_state_dict():
    return torch.load(os.path.join(MICRO, 'state_dict.pt'), map_location='cpu')


# --- the other codebases' layouts, written out here from their documented naming

TV_TO_TIMM_BLOCK = {'mlp.0.': 'mlp.fc1.', 'mlp.3.': 'mlp.fc2.'}


def ms_attn_mask(res, ws):
    """Microsoft's attn_mask for a shifted block on a res x res grid."""
    shift = ws // 2
    img = torch.zeros(res, res)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[hs, wsl] = cnt
            cnt += 1
    win = img.reshape(res // ws, ws, res // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def to_timm(sd, placement, head_fc=False, index=None, masks=None):
    """Rename a torchvision state_dict.  placement 'end' (Microsoft, timm <
    0.9) or 'start' (timm >= 0.9); index 'matrix' stores (N, N) indices;
    masks=(img_size, patch, window) adds Microsoft's attn_mask buffers."""
    out = OrderedDict()
    for k, v in sd.items():
        parts = k.split('.')
        if k.startswith('features.0.0.'):
            out['patch_embed.proj.' + parts[-1]] = v
        elif k.startswith('features.0.2.'):
            out['patch_embed.norm.' + parts[-1]] = v
        elif k.startswith('features.') and int(parts[1]) % 2 == 1:
            layer, blk, rest = int(parts[1]) // 2, parts[2], '.'.join(parts[3:])
            for a, b in TV_TO_TIMM_BLOCK.items():
                rest = rest.replace(a, b)
            if rest == 'attn.relative_position_index':
                if index is None:
                    continue
                n = int(round(v.numel() ** 0.5))
                v = v.reshape(n, n) if index == 'matrix' else v
            out[f'layers.{layer}.blocks.{blk}.{rest}'] = v
            if rest == 'norm2.bias' and masks and int(blk) % 2 == 1:
                img, patch, ws = masks
                res = (img // patch) >> layer
                if res > ws:
                    out[f'layers.{layer}.blocks.{blk}.attn_mask'] = ms_attn_mask(res, ws)
        elif k.startswith('features.'):
            f = int(parts[1])
            layer = f // 2 - 1 if placement == 'end' else f // 2
            out[f'layers.{layer}.downsample.' + '.'.join(parts[2:])] = v
        elif k.startswith('head.'):
            out[('head.fc.' if head_fc else 'head.') + parts[-1]] = v
        else:
            out[k] = v
    return out


class ConverterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='qcal-convert-')
        cls.card = os.path.join(MICRO, 'model.json')
        cls.converted = os.path.join(cls.tmp, 'micro.h5')
        rc, out, err = run(os.path.join(MICRO, 'state_dict.pt'), cls.converted,
                           '--card', cls.card)
        assert rc == 0, err
        print(out.strip())
        with h5py.File(os.path.join(MICRO, 'weights.h5'), 'r') as f:
            cls.ref_config = f.attrs['config']
        cls.cfg = json.loads(cls.ref_config)
        cls.classes = ','.join(cls.cfg['classes'])
        cls.norm_flags = ['--img-size', 32, '--mean', ','.join(repr(x) for x in cls.cfg['mean']),
                          '--std', ','.join(repr(x) for x in cls.cfg['std']),
                          '--name', cls.cfg['name'], '--classes', cls.classes]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def save(self, obj, name):
        p = self.path(name)
        torch.save(obj, p)
        return p

    # ------------------------------------------------------------- good paths

    def test_torchvision_state_dict_equals_weights_h5(self):
        n = assert_same_tensors(self, self.converted, os.path.join(MICRO, 'weights.h5'))
        _, attrs = h5_tensors(self.converted)
        self.assertEqual(attrs['config'], self.ref_config)  # byte-identical JSON
        self.assertEqual(list(json.loads(attrs['config'])), list(conv.CONFIG_KEYS))
        self.assertEqual(attrs['input_folded'], 'false')
        print(f'state_dict.pt -> {n} datasets, every one byte-identical to weights.h5; '
              f'config string identical')

    def test_timm_and_microsoft_layouts(self):
        sd = micro_state_dict()
        cases = {
            'microsoft': ({'model': to_timm(sd, 'end', index='matrix', masks=(32, 2, 4)),
                           'optimizer': {'state': {}}, 'epoch': 8}, 'end', 'model'),
            'timm-0.6': (OrderedDict(('module.' + k, v) for k, v in
                                     to_timm(sd, 'end', index='flat').items()), 'end', 'module.'),
            'timm-0.9': ({'state_dict': to_timm(sd, 'start', head_fc=True)}, 'start',
                         'state_dict'),
        }
        for name, (obj, placement, wrap) in cases.items():
            with self.subTest(layout=name):
                src = self.save(obj, f'{name}.pt')
                out = self.path(f'{name}.h5')
                rc, stdout, err = run(src, out, *self.norm_flags)
                self.assertEqual(rc, 0, err)
                self.assertIn('timm/microsoft', stdout)
                self.assertIn('end of layers[i]' if placement == 'end'
                              else 'start of layers[i+1]', stdout)
                self.assertIn(repr(wrap), stdout)
                assert_same_tensors(self, out, os.path.join(MICRO, 'weights.h5'))
                self.assertEqual(h5_tensors(out)[1]['config'], self.ref_config)
                print(f'{name}: {stdout.strip()}')
        # Microsoft's file carried 2 attn_mask buffers (shifted blocks of stages 0, 1).
        self.assertIn('dropped 2 buffers', run(self.path('microsoft.pt'),
                                               self.path('ms2.h5'), *self.norm_flags)[1])

    def test_structure_model_from_flags(self):
        """4 stages, window 7 (padding at 28/14, no shift at 7), no card."""
        ref = os.path.join(STRUCT, 'weights.h5')
        tensors, attrs = h5_tensors(ref)
        cfg = json.loads(attrs['config'])
        sd = OrderedDict((k, torch.from_numpy(v)) for k, v in tensors.items())
        src = self.save({'model': to_timm(sd, 'end', index='matrix', masks=(224, 4, 7))},
                        'struct.pt')
        out = self.path('struct.h5')
        rc, stdout, err = run(src, out, '--img-size', 224, '--name', cfg['name'],
                              '--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225',
                              '--depths', '2,2,6,2', '--num-heads', '1,2,4,8',
                              '--window-size', 7, '--patch-size', 4, '--embed-dim', 32,
                              '--mlp-ratio', 4, '--num-classes', 1000)
        self.assertEqual(rc, 0, err)
        assert_same_tensors(self, out, ref)
        got = json.loads(h5_tensors(out)[1]['config'])
        cfg.pop('note')
        self.assertEqual(got, cfg)
        # The masks pin img_size: 224 is right, 192 is caught.
        rc, _, err = run(src, self.path('struct192.h5'), '--img-size', 192,
                         '--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225')
        self.assertEqual(rc, 1)
        self.assertIn('img_size = 192 contradicts', err)
        self.assertIn('layers.0.blocks.1.attn_mask has shape (64, 49, 49)', err)

    def test_patch_merging_orders_agree(self):
        """torchvision, Microsoft and timm >= 0.9 concatenate the 2x2
        neighbourhood in the same order, so reduction weights copy as is."""
        g = torch.Generator().manual_seed(3)
        x = torch.randn(2, 6, 10, 5, generator=g)  # B, H, W, C
        tv = _patch_merging_pad(x)
        ms = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2],
                        x[:, 1::2, 1::2]], -1)
        B, H, W, C = x.shape
        timm9 = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
        self.assertTrue(torch.equal(tv, ms))
        self.assertTrue(torch.equal(tv, timm9))
        # The check can fail: rows-inside-columns would be a different order.
        other = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 2, 4, 5).flatten(3)
        self.assertFalse(torch.equal(tv, other))

    def test_torchvision_strict_load_reproduces_reference_logits(self):
        model = torchvision_model(self.cfg, self.converted)
        with h5py.File(os.path.join(MICRO, 'reference.h5'), 'r') as f:
            x = torch.from_numpy(f['input'][()])
            ref = torch.from_numpy(f['logits'][()])
        with torch.no_grad():
            logits = model(x)
        diff = (logits - ref).abs().max().item()
        print(f'torchvision on the converted file: {x.shape[0]} images, max|logits - '
              f'reference| = {diff:.3g} (max|ref| = {ref.abs().max().item():.3g})')
        self.assertLessEqual(diff, 1e-5 * ref.abs().max().item())

    def test_c_loader_reads_converted_file(self):
        r = subprocess.run([CKPT_TOOL, 'compare', self.converted,
                            os.path.join(MICRO, 'weights.h5')],
                           capture_output=True, text=True)
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('bit-exact', r.stdout)
        # The comparison can fail: a file with one changed weight differs.
        bad = self.path('one-weight-off.h5')
        shutil.copy(self.converted, bad)
        with h5py.File(bad, 'r+') as f:
            f['head.bias'][3] += 1e-3
        r = subprocess.run([CKPT_TOOL, 'compare', bad, self.converted],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn('head.bias differs', r.stderr)

    def test_c_saved_file_loads_in_torchvision(self):
        for src, cfg in ((self.converted, self.cfg), (TINY_GOOD, None)):
            with self.subTest(src=os.path.basename(src)):
                out = self.path('resaved-' + os.path.basename(src))
                r = subprocess.run([CKPT_TOOL, 'resave', src, out], capture_output=True,
                                   text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                with h5py.File(out, 'r') as f:
                    saved_cfg = json.loads(f.attrs['config'])
                    self.assertEqual(f.attrs['input_folded'], 'false')
                    self.assertEqual(f['features.1.0.attn.relative_position_index'].dtype,
                                     np.int64)
                if cfg is None:
                    with h5py.File(src, 'r') as f:
                        cfg = json.loads(f.attrs['config'])
                # C writes mean/std as float32 values (9 digits): compare as such.
                for key in ('mean', 'std'):
                    self.assertEqual(np.float32(saved_cfg.pop(key)).tobytes(),
                                     np.float32(cfg[key]).tobytes())
                self.assertEqual(saved_cfg, {k: v for k, v in cfg.items()
                                             if k not in ('mean', 'std')})
                a = torchvision_model(cfg, src)
                b = torchvision_model(cfg, out)  # strict=True
                x = torch.randn(4, 3, cfg['img_size'], cfg['img_size'],
                                generator=torch.Generator().manual_seed(1))
                with torch.no_grad():
                    self.assertTrue(torch.equal(a(x), b(x)))
                for k, v in a.state_dict().items():
                    self.assertTrue(torch.equal(v, b.state_dict()[k]), k)

    # -------------------------------------------------------------- bad input

    def expect_error(self, argv, code, *needles, out=None):
        out = out or self.path('err-out.h5')
        if os.path.exists(out):
            os.unlink(out)
        rc, stdout, err = run(*argv[:1], out, *argv[1:])
        self.assertEqual(rc, code, err)
        lines = err.strip().splitlines()
        msg = lines[-1]
        if code == 1:
            self.assertEqual(len(lines), 1, err)  # one line, no usage
        for n in needles:
            self.assertIn(n, msg)
        self.assertFalse(os.path.exists(out))
        self.assertEqual([f for f in os.listdir(self.tmp) if '.tmp.' in f], [])
        self.assertEqual(stdout, '')
        return msg

    def test_missing_and_misshapen_tensors(self):
        sd = micro_state_dict()
        d = OrderedDict(sd)
        del d['features.3.1.mlp.3.bias']
        print(self.expect_error([self.save(d, 'missing.pt'), '--card', self.card], 1,
                                'missing tensor features.3.1.mlp.3.bias',
                                'expected shape (96)'))
        t = to_timm(sd, 'start', head_fc=True)
        del t['layers.1.blocks.0.mlp.fc2.weight']
        print(self.expect_error([self.save(t, 'missing-timm.pt'), '--card', self.card], 1,
                                'missing tensor layers.1.blocks.0.mlp.fc2.weight',
                                'expected shape (96, 384)'))
        d = OrderedDict(sd)
        d['features.1.0.mlp.3.weight'] = d['features.1.0.mlp.3.weight'].t().contiguous()
        print(self.expect_error([self.save(d, 'shape.pt'), '--card', self.card], 1,
                                'features.1.0.mlp.3.weight has shape (192, 48)',
                                'expected (48, 192)'))
        d = OrderedDict(sd)
        d['norm.bias'] = torch.arange(384)
        print(self.expect_error([self.save(d, 'int.pt'), '--card', self.card], 1,
                                'norm.bias has dtype int64', 'expected floating point'))

    def test_extra_and_buffers(self):
        sd = micro_state_dict()
        d = OrderedDict(sd)
        d['features.1.0.attn.extra_scale'] = torch.ones(3)
        print(self.expect_error([self.save(d, 'extra.pt'), '--card', self.card], 1,
                                'unexpected tensor features.1.0.attn.extra_scale'))
        d = OrderedDict(sd)
        d['features.1.0.attn.logit_scale'] = torch.ones(3, 1, 1)
        print(self.expect_error([self.save(d, 'v2.pt'), '--card', self.card], 1,
                                'features.1.0.attn.logit_scale belongs to Swin V2'))
        d = OrderedDict(sd)
        idx = d['features.3.1.attn.relative_position_index'].clone()
        idx[17] += 1
        d['features.3.1.attn.relative_position_index'] = idx
        print(self.expect_error([self.save(d, 'index.pt'), '--card', self.card], 1,
                                'features.3.1.attn.relative_position_index[17] =',
                                "not Swin's relative position index"))
        t = to_timm(sd, 'end')
        t['layers.0.downsample.norm.weight'] = t['layers.0.downsample.norm.weight'][:96]
        print(self.expect_error([self.save(t, 'merge.pt'), '--card', self.card], 1,
                                'cannot place layers.0.downsample.norm.weight'))
        # Stage 0's merging at the end of layers[0], stage 1's at the start of layers[2].
        t = to_timm(sd, 'end')
        for p in ('reduction.weight', 'norm.weight', 'norm.bias'):
            t[f'layers.2.downsample.{p}'] = t.pop(f'layers.1.downsample.{p}')
        print(self.expect_error([self.save(t, 'mixed.pt'), '--card', self.card], 1,
                                'inconsistent patch merging placement'))

    def test_contradicting_flags(self):
        src = os.path.join(MICRO, 'state_dict.pt')
        cases = [
            (['--num-heads', '3,6,6'], '--num-heads = 3,6,6 contradicts',
             'features.5.0.attn.relative_position_bias_table has shape (49, 12)'),
            (['--embed-dim', '64'], '--embed-dim = 64 contradicts',
             'features.0.0.weight has shape (48, 3, 2, 2)'),
            (['--depths', '2,2,6'], '--depths = 2,2,6 contradicts', 'depths = 2,2,2'),
            (['--window-size', '7'], '--window-size = 7 contradicts', '(49, 3)'),
            (['--patch-size', '4'], '--patch-size = 4 contradicts', 'patch_size = 2'),
            (['--mlp-ratio', '2'], '--mlp-ratio = 2.0 contradicts',
             'features.1.0.mlp.0.weight has shape (192, 48)'),
            (['--num-classes', '100'], '--num-classes = 100 contradicts',
             'head.weight has shape (10, 192)'),
            (['--classes', 'a,b,c'], '--classes lists 3 classes, expected 10', ''),
            (['--mean', '0.5,0.5'], '--mean has 2 values, expected 3', ''),
            (['--std', '0.2,0,0.2'], 'every std must be > 0', ''),
        ]
        for extra, n1, n2 in cases:
            with self.subTest(flags=extra):
                print(self.expect_error([src, '--card', self.card] + extra, 1, n1, n2))
        card = self.path('card-100.json')
        with open(self.card) as f:
            c = json.load(f)
        c['num_classes'] = 100
        with open(card, 'w') as f:
            json.dump(c, f)
        print(self.expect_error([src, '--card', card], 1,
                                f'{card}: "num_classes" = 100 contradicts'))
        # A flag overrides the card: the right value from the flag wins.
        rc, _, err = run(src, self.path('override.h5'), '--card', card, '--num-classes', 10,
                         '--classes', self.classes)
        self.assertEqual(rc, 0, err)

    def test_usage_errors(self):
        src = os.path.join(MICRO, 'state_dict.pt')
        self.expect_error([src, '--mean', '0.5,0.5,0.5', '--std', '0.2,0.2,0.2'], 2,
                          '--img-size is required')
        self.expect_error([src, '--img-size', 32, '--std', '0.2,0.2,0.2'], 2,
                          '--mean is required')
        self.expect_error([src, '--card', self.card, '--depths', '2,x'], 2,
                          'argument --depths: expected comma-separated integers')
        self.expect_error([src, '--card', self.card, '--bogus'], 2, 'unrecognized arguments')

    def test_unreadable_inputs(self):
        text = self.path('text.pt')
        with open(text, 'w') as f:
            f.write('not a checkpoint\n')
        print(self.expect_error([text, '--card', self.card], 1,
                                f'{text}: not a readable PyTorch checkpoint'))
        print(self.expect_error([self.path('nope.pt'), '--card', self.card], 1,
                                'nope.pt: no such file'))
        import argparse
        sd = micro_state_dict()
        src = self.save({'model': sd, 'args': argparse.Namespace(lr=1e-3)}, 'pickled.pt')
        print(self.expect_error([src, '--card', self.card], 1, 'argparse.Namespace',
                                '--trust-pickle'))
        rc, _, err = run(src, self.path('trusted.h5'), '--card', self.card, '--trust-pickle')
        self.assertEqual(rc, 0, err)
        assert_same_tensors(self, self.path('trusted.h5'), os.path.join(MICRO, 'weights.h5'))
        print(self.expect_error([self.save({'epoch': 3}, 'nodict.pt'), '--card', self.card], 1,
                                'no state_dict found'))
        bad_card = self.path('bad-card.json')
        with open(bad_card, 'w') as f:
            f.write('{"img_size": 32,}')
        print(self.expect_error([os.path.join(MICRO, 'state_dict.pt'), '--card', bad_card], 1,
                                'card is not valid JSON'))

    def test_failed_conversion_keeps_existing_output(self):
        out = self.path('keep.h5')
        with open(out, 'wb') as f:
            f.write(b'previous contents')
        sd = OrderedDict(micro_state_dict())
        del sd['head.bias']
        rc, _, err = run(self.save(sd, 'nohead.pt'), out, '--card', self.card)
        self.assertEqual(rc, 1)
        with open(out, 'rb') as f:
            self.assertEqual(f.read(), b'previous contents')
        rc, _, err = run(os.path.join(MICRO, 'state_dict.pt'), out, '--card', self.card)
        self.assertEqual(rc, 0, err)
        assert_same_tensors(self, out, os.path.join(MICRO, 'weights.h5'))
        self.assertEqual([f for f in os.listdir(self.tmp) if '.tmp.' in f], [])

    def test_command_line(self):
        r = subprocess.run([CONVERTER, '--help'], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for word in ('IN.pt', 'OUT.h5', '--card', '--img-size', '--trust-pickle', 'example:',
                     'exit codes', 'timm', 'relative_position_index'):
            self.assertIn(word, r.stdout)
        r = subprocess.run([CONVERTER], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        out = self.path('cli.h5')
        r = subprocess.run([CONVERTER, os.path.join(MICRO, 'state_dict.pt'), out, '--card',
                            self.card, '--num-heads', '3,6,6'], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertFalse(os.path.exists(out))


def main():
    global CKPT_TOOL, CONVERTER, conv
    if len(sys.argv) < 3:
        print('usage: test_convert.py CKPT_TOOL CONVERTER [unittest args]', file=sys.stderr)
        return 2
    CKPT_TOOL, CONVERTER = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    conv = load_converter(CONVERTER)
    torch.set_num_threads(2)
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[3:], exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main())
