#!/usr/bin/python3
"""Fixtures for tests/datasets: what Pillow and torchvision make of images.

Run with /usr/bin/python3 (Pillow 9.4, torch 1.13, torchvision 0.14) from
anywhere; writes tests/datasets/fixtures/:

  decode/*.png, *.jpg   tiny valid images in every PNG colour type / bit
                        depth / interlace and every JPEG flavour we support
  bad/*                 truncated, corrupt, disguised and oversized files
  resize/src.png        a natural 181x127 image (tiled, upscaled CIFAR-10
                        test images), and src_t.png its transpose;
                        photo_500x375.jpg an ImageNet-sized JPEG
  resize/<case>.png     PIL's output for each resize case (see CASES)
  expected.h5           decode/<file>      Image.open(f).convert("RGB") (H,W,3) uint8
                        norm/<model>       ToTensor+Normalize of every pixel
                                           value (3,256) float32
                        pipeline/<case>    the full torchvision eval transform
                                           (C,H,W) float32 for a few cases
                        aug/src, aug/<mode>_<top>_<left>_<flip>
                                           torchvision's pad + crop + hflip of
                                           a CIFAR image for fixed draws

PNG variants are written by a small encoder below (Pillow cannot write
16-bit colour, 2/4-bit grey, interlaced or tRNS-on-RGB files); JPEG flavours
Pillow cannot write (YCCK, CMYK without Adobe marker, restart intervals,
arithmetic coding, untransformed RGB) come from make_jpeg_variants.c,
compiled here against the system libjpeg-turbo.  Every expected pixel comes
from Pillow itself, never from this script's own idea of the conversion.
"""
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import h5py
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
SHARED = os.environ.get("QCAL_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
CIFAR_TEST = os.path.join(SHARED, "data", "cifar10", "test")

CIFAR_MEAN = [0.49140000343322754, 0.4821999967098236, 0.4465000033378601]
CIFAR_STD = [0.24699999392032623, 0.2434999942779541, 0.26159998774528503]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

rng = np.random.default_rng(20261124)


# ----------------------------------------------------------------- PNG writer
def chunk(tag, data):
    body = tag + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_rows(samples, bit_depth):
    """samples: (H, W*channels) ints -> list of packed row bytes."""
    rows = []
    for r in samples:
        if bit_depth == 16:
            rows.append(b"".join(struct.pack(">H", int(v)) for v in r))
        elif bit_depth == 8:
            rows.append(bytes(int(v) for v in r))
        else:
            per = 8 // bit_depth
            out = bytearray()
            for i in range(0, len(r), per):
                byte = 0
                for j in range(per):
                    v = int(r[i + j]) if i + j < len(r) else 0
                    byte |= v << (8 - bit_depth * (j + 1))
                out.append(byte)
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, pixels, color_type, bit_depth, palette=None, trns=None,
              interlace=False, extra_chunks=(), filters=True):
    """pixels: (H, W, C) array of sample values (palette: indices, C=1)."""
    h, w, c = pixels.shape
    flat = pixels.reshape(h, w * c)
    bpp = max(1, c * bit_depth // 8)

    def filtered(rows):
        out = b""
        prev = bytes(len(rows[0])) if rows else b""
        for i, row in enumerate(rows):
            ft = (i % 5) if filters else 0
            cur = bytearray(row)
            res = bytearray(len(cur))
            for x in range(len(cur)):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                cc = prev[x - bpp] if x >= bpp else 0
                if ft == 0:
                    p = 0
                elif ft == 1:
                    p = a
                elif ft == 2:
                    p = b
                elif ft == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - cc), abs(a - cc), abs(a + b - 2 * cc)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                res[x] = (cur[x] - p) & 0xFF
            out += bytes([ft]) + bytes(res)
            prev = row
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            raw += filtered(pack_rows(sub.reshape(sub.shape[0], -1), bit_depth))
    else:
        raw = filtered(pack_rows(flat, bit_depth))
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                       1 if interlace else 0))
    for tag, body in extra_chunks:
        data += chunk(tag, body)
    if palette is not None:
        data += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    comp = zlib.compress(raw, 9)
    # Two IDAT chunks, to exercise chunk boundaries inside the stream.
    half = len(comp) // 2
    data += chunk(b"IDAT", comp[:half]) + chunk(b"IDAT", comp[half:])
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)
    return data


# ------------------------------------------------------------- source images
def cifar_files():
    classes = sorted(os.listdir(CIFAR_TEST))
    return [os.path.join(CIFAR_TEST, c, n) for c in classes
            for n in sorted(os.listdir(os.path.join(CIFAR_TEST, c)))]


def natural_image(w, h, seed_index):
    """A natural-looking RGB image: CIFAR test images tiled and upscaled."""
    files = cifar_files()
    tiles = [Image.open(files[(seed_index + 997 * k) % len(files)]).convert("RGB") for k in range(6)]
    canvas = Image.new("RGB", (96, 64))
    for k, t in enumerate(tiles):
        canvas.paste(t, ((k % 3) * 32, (k // 3) * 32))
    return canvas.resize((w, h), Image.BICUBIC)


def expect(h5, name, path):
    arr = np.array(Image.open(path).convert("RGB"))
    h5.create_dataset("decode/" + name, data=arr)
    return arr


# ------------------------------------------------------------------ fixtures
def make_png_variants(h5, d):
    h, w = 7, 13
    g8 = rng.integers(0, 256, (h, w, 1))
    rgb8 = rng.integers(0, 256, (h, w, 3))
    a8 = rng.integers(0, 256, (h, w, 1))
    g16 = rng.integers(0, 65536, (h, w, 1))
    g16[0, :6, 0] = [0, 1, 200, 255, 256, 300]  # around the clip at 255
    rgb16 = rng.integers(0, 65536, (h, w, 3))
    a16 = rng.integers(0, 65536, (h, w, 1))
    pal = rng.integers(0, 256, (256, 3))
    cases = {
        "g1": (rng.integers(0, 2, (h, w, 1)), 0, 1, {}),
        "g2": (rng.integers(0, 4, (h, w, 1)), 0, 2, {}),
        "g4": (rng.integers(0, 16, (h, w, 1)), 0, 4, {}),
        "g8": (g8, 0, 8, {}),
        "g8_trns": (g8, 0, 8, {"trns": struct.pack(">H", int(g8[0, 0, 0]))}),
        "g16": (g16, 0, 16, {}),
        "ga8": (np.concatenate([g8, a8], 2), 4, 8, {}),
        "ga16": (np.concatenate([g16, a16], 2), 4, 16, {}),
        "rgb8": (rgb8, 2, 8, {}),
        "rgb8_trns": (rgb8, 2, 8, {"trns": struct.pack(">HHH", *map(int, rgb8[0, 0]))}),
        "rgb16": (rgb16, 2, 16, {}),
        "rgba8": (np.concatenate([rgb8, a8], 2), 6, 8, {}),
        "rgba16": (np.concatenate([rgb16, a16], 2), 6, 16, {}),
        "p1": (rng.integers(0, 2, (h, w, 1)), 3, 1, {"palette": pal[:2]}),
        "p2": (rng.integers(0, 4, (h, w, 1)), 3, 2, {"palette": pal[:4]}),
        "p4": (rng.integers(0, 16, (h, w, 1)), 3, 4, {"palette": pal[:16]}),
        "p8": (rng.integers(0, 200, (h, w, 1)), 3, 8, {"palette": pal[:200]}),
        "p8_trns": (rng.integers(0, 200, (h, w, 1)), 3, 8,
                    {"palette": pal[:200], "trns": bytes(rng.integers(0, 256, 40).tolist())}),
        "p4_trns1": (rng.integers(0, 16, (h, w, 1)), 3, 4,
                     {"palette": pal[:16], "trns": b"\xff\xff\x00"}),
        "rgb8_adam7": (rng.integers(0, 256, (11, 10, 3)), 2, 8, {"interlace": True}),
        "g4_adam7": (rng.integers(0, 16, (9, 11, 1)), 0, 4, {"interlace": True}),
        "p8_adam7": (rng.integers(0, 200, (9, 11, 1)), 3, 8,
                     {"palette": pal[:200], "interlace": True}),
        "rgba16_adam7": (rng.integers(0, 65536, (5, 6, 4)), 6, 16, {"interlace": True}),
        # Metadata that must not change the pixels: gamma, a text chunk, sBIT.
        "rgb8_meta": (rgb8, 2, 8, {"extra_chunks": [(b"gAMA", struct.pack(">I", 100000)),
                                                    (b"tEXt", b"Comment\0qcal fixture"),
                                                    (b"sBIT", b"\x05\x06\x05")]}),
        "one_pixel": (rng.integers(0, 256, (1, 1, 3)), 2, 8, {}),
    }
    for name, (px, ct, bd, kw) in cases.items():
        path = os.path.join(d, name + ".png")
        write_png(path, px, ct, bd, **kw)
        expect(h5, name + ".png", path)
    # Pillow's own encoder (zlib filters it chose), for good measure.
    img = natural_image(29, 17, 5)
    for mode in ["RGB", "L", "P", "RGBA", "LA", "1"]:
        im = img.convert(mode) if mode != "P" else img.convert("P", palette=Image.ADAPTIVE, colors=37)
        path = os.path.join(d, "pil_%s.png" % mode.lower())
        im.save(path)
        expect(h5, os.path.basename(path), path)
    im16 = Image.fromarray(rng.integers(0, 1024, (9, 8)).astype(np.uint16), mode="I;16")
    path = os.path.join(d, "pil_i16.png")
    im16.save(path)
    expect(h5, "pil_i16.png", path)


def make_jpeg_variants(h5, d, helper):
    img = natural_image(43, 29, 11)
    saves = {
        "rgb420.jpg": dict(quality=90),
        "rgb444.jpg": dict(quality=92, subsampling=0),
        "rgb422.jpg": dict(quality=85, subsampling=1),
        "rgb_progressive.jpg": dict(quality=90, progressive=True),
        "rgb_optimized.jpg": dict(quality=75, optimize=True),
        "rgb_q100.jpg": dict(quality=100),
    }
    for name, kw in saves.items():
        path = os.path.join(d, name)
        img.save(path, **kw)
        expect(h5, name, path)
    path = os.path.join(d, "grey.jpg")
    img.convert("L").save(path, quality=90)
    expect(h5, "grey.jpg", path)
    path = os.path.join(d, "grey_progressive.jpg")
    img.convert("L").save(path, quality=90, progressive=True)
    expect(h5, "grey_progressive.jpg", path)
    path = os.path.join(d, "odd_17x9.jpg")
    natural_image(17, 9, 3).save(path, quality=90)
    expect(h5, "odd_17x9.jpg", path)
    # CMYK as Pillow writes it (Adobe marker, inverted samples).
    cmyk = Image.fromarray(rng.integers(0, 256, (29, 43, 4)).astype(np.uint8), mode="CMYK")
    cmyk = Image.merge("CMYK", [b.resize((43, 29)) for b in
                                [Image.fromarray(np.array(img)[:, :, 0]),
                                 Image.fromarray(np.array(img)[:, :, 1]),
                                 Image.fromarray(np.array(img)[:, :, 2]),
                                 Image.fromarray(np.array(cmyk)[:, :, 3] // 2)]])
    path = os.path.join(d, "cmyk_adobe.jpg")
    cmyk.save(path, quality=90)
    expect(h5, "cmyk_adobe.jpg", path)
    # libjpeg-written flavours.
    with tempfile.TemporaryDirectory() as tmp:
        raw4 = os.path.join(tmp, "in4.raw")
        raw3 = os.path.join(tmp, "in3.raw")
        np.array(cmyk).tofile(raw4)
        np.array(img).tofile(raw3)
        for mode, raw, name in [("ycck", raw4, "ycck_adobe.jpg"),
                                ("cmyk-noadobe", raw4, "cmyk_noadobe.jpg"),
                                ("restart", raw3, "rgb_restart.jpg"),
                                ("arith", raw3, "rgb_arith.jpg"),
                                ("rgb", raw3, "rgb_notransform.jpg")]:
            path = os.path.join(d, name)
            subprocess.run([helper, mode, path, "43", "29", raw], check=True)
            expect(h5, name, path)
    # Junk right before an RST marker: libjpeg's Huffman decoder has read it
    # ahead and drops it without a warning; every MCU is intact (Pillow agrees).
    data = open(os.path.join(d, "rgb_restart.jpg"), "rb").read()
    rst = data.index(b"\xff\xd0", data.index(b"\xff\xda"))
    path = os.path.join(d, "junk_before_rst.jpg")
    with open(path, "wb") as f:
        f.write(data[:rst] + b"\x00\x00\x00" + data[rst:])
    expect(h5, "junk_before_rst.jpg", path)
    # The same for a few bytes before EOI.
    data = open(os.path.join(d, "rgb420.jpg"), "rb").read()
    assert data[-2:] == b"\xff\xd9"
    path = os.path.join(d, "junk_before_eoi.jpg")
    with open(path, "wb") as f:
        f.write(data[:-2] + b"\x00\x11\x22" + data[-2:])
    expect(h5, "junk_before_eoi.jpg", path)
    # Trailing bytes after EOI are ignored by libjpeg and Pillow alike.
    path = os.path.join(d, "trailing_after_eoi.jpg")
    with open(path, "wb") as f:
        f.write(data + b"garbage after the image")
    expect(h5, "trailing_after_eoi.jpg", path)


def check_cmyk_formula():
    """Pillow's CMYK -> RGB, exhaustively, against the formula the C code uses."""
    c = np.repeat(np.arange(256), 256).astype(np.uint8)
    k = np.tile(np.arange(256), 256).astype(np.uint8)
    px = np.stack([c, c, c, k], 1).reshape(256, 256, 4)
    got = np.array(Image.fromarray(px, mode="CMYK").convert("RGB"))[:, :, 0].reshape(-1)
    nk = 255 - k.astype(np.int64)
    t = c.astype(np.int64) * nk + 128
    ref = np.clip(nk - (((t >> 8) + t) >> 8), 0, 255)
    assert (got == ref).all(), "Pillow's cmyk2rgb differs from the formula in image_jpeg.c"


def make_bad(d, decode_dir):
    png = open(os.path.join(decode_dir, "rgb8.png"), "rb").read()
    jpg = open(os.path.join(decode_dir, "rgb420.jpg"), "rb").read()
    prog = open(os.path.join(decode_dir, "rgb_progressive.jpg"), "rb").read()
    restart = open(os.path.join(decode_dir, "rgb_restart.jpg"), "rb").read()

    def put(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    idat = png.index(b"IDAT")
    put("truncated_idat.png", png[:idat + 20])
    put("truncated_no_iend.png", png[:-12])
    # A flipped CRC on intact data (zlib cannot notice), in IDAT and in an
    # ancillary chunk (libpng would only warn and drop the chunk).
    corrupt = bytearray(png)
    length = struct.unpack(">I", png[idat - 4:idat])[0]
    corrupt[idat + 4 + length] ^= 0x55
    put("crc_mismatch.png", bytes(corrupt))
    meta = bytearray(open(os.path.join(decode_dir, "rgb8_meta.png"), "rb").read())
    text = meta.index(b"tEXt")
    meta[text + 6] ^= 0x20
    put("crc_ancillary.png", bytes(meta))
    # Valid CRCs around a broken zlib stream.
    h, w = 7, 13
    raw = bytearray(zlib.compress(bytes((1 + 3 * w) * h), 9))
    raw[2] ^= 0xFF
    put("bad_zlib.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", bytes(raw)) + chunk(b"IEND", b""))
    # Too little image data in a well-formed stream.
    put("short_idat.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(bytes((1 + 3 * w) * (h - 2)), 9)) + chunk(b"IEND", b""))
    # A palette index beyond a 4-entry palette (Pillow would show a grey ramp value).
    px = np.zeros((3, 4, 1), dtype=np.int64)
    px[1, 2, 0] = 9
    with tempfile.TemporaryDirectory() as tmp:
        data = write_png(os.path.join(tmp, "p.png"), px, 3, 8, palette=np.zeros((4, 3)))
    put("palette_index.png", data)
    put("huge_dims.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    put("zero_width.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b""))
    put("signature_only.png", png[:8])
    # JPEG: cut inside the entropy-coded data (libjpeg would pad with grey).
    sos = jpg.index(b"\xff\xda")
    put("truncated_scan.jpg", jpg[:sos + (len(jpg) - sos) // 2])
    put("truncated_header.jpg", jpg[:sos - 40])
    put("no_eoi.jpg", jpg[:-2])
    put("truncated_progressive.jpg", prog[:len(prog) * 2 // 3])
    # A marker inside the scan data: "premature end of data segment".
    hit = bytearray(jpg)
    mid = sos + (len(jpg) - sos) // 2
    hit[mid:mid + 2] = b"\xff\xd0"
    put("marker_in_scan.jpg", bytes(hit))
    # Junk inside a restart interval: the interval decodes early and libjpeg
    # warns about the bytes it skips before the RST marker.
    sos = restart.index(b"\xff\xda")
    put("junk_in_interval.jpg", restart[:sos + 85] + b"\x00\x00\x00" + restart[sos + 85:])
    # Many junk bytes before EOI: libjpeg counts what it skips and warns
    # (it cannot tell this from a last scan that decoded garbage): refused.
    put("junk_before_eoi_long.jpg", jpg[:-2] + bytes(range(1, 201)) + jpg[-2:])
    # Broken header: SOF with 0 components; and an absurd size in SOF.
    sof = jpg.index(b"\xff\xc0")
    bad_sof = bytearray(jpg)
    bad_sof[sof + 9] = 0
    put("bad_sof.jpg", bytes(bad_sof))
    huge = bytearray(jpg)
    huge[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    put("huge_dims.jpg", bytes(huge))
    put("soi_only.jpg", b"\xff\xd8\xff")
    put("text.jpg", b"this is a text file, not an image\n")
    put("empty.png", b"")
    put("bitmap.jpg", b"BM" + bytes(60))
    put("gif.png", b"GIF89a" + bytes(20))


RESIZE_CASES = [
    # name, source, interp, resize_size (shorter side), crop
    ("bilinear_37_32", "src.png", Image.BILINEAR, 37, 32),
    ("bicubic_37_32", "src.png", Image.BICUBIC, 37, 32),
    ("bilinear_256_224", "src.png", Image.BILINEAR, 256, 224),
    ("bicubic_256_224", "src.png", Image.BICUBIC, 256, 224),
    ("bilinear_t_37_32", "src_t.png", Image.BILINEAR, 37, 32),
    ("bicubic_t_100_96", "src_t.png", Image.BICUBIC, 100, 96),
    ("bilinear_127_120", "src.png", Image.BILINEAR, 127, 120),  # no resize, crop only
    # ImageNet-like: 500x375 JPEG -> 341x256 -> 224 (downscale by 1.46).
    ("imagenet_bilinear_256_224", "photo_500x375.jpg", Image.BILINEAR, 256, 224),
    ("imagenet_bicubic_256_224", "photo_500x375.jpg", Image.BICUBIC, 256, 224),
]
DIRECT_CASES = [
    # name, source, interp, (w, h): a plain PIL resize
    ("direct_bicubic_181x64", "src.png", Image.BICUBIC, (181, 64)),
    ("direct_bilinear_90x127", "src.png", Image.BILINEAR, (90, 127)),
    ("direct_bicubic_200x300", "src.png", Image.BICUBIC, (200, 300)),
    ("direct_bilinear_7x5", "src.png", Image.BILINEAR, (7, 5)),
]


def make_resize(h5, d):
    src = natural_image(181, 127, 42)
    src.save(os.path.join(d, "src.png"))
    src.transpose(Image.TRANSPOSE).save(os.path.join(d, "src_t.png"))
    natural_image(500, 375, 123).save(os.path.join(d, "photo_500x375.jpg"), quality=85)
    for name, s, interp, rs, crop in RESIZE_CASES:
        im = Image.open(os.path.join(d, s)).convert("RGB")
        t = T.Compose([T.Resize(rs, interpolation=T.InterpolationMode.BILINEAR if interp == Image.BILINEAR
                                else T.InterpolationMode.BICUBIC), T.CenterCrop(crop)])
        out = t(im)
        out.save(os.path.join(d, name + ".png"))
    for name, s, interp, size in DIRECT_CASES:
        im = Image.open(os.path.join(d, s)).convert("RGB")
        im.resize(size, interp).save(os.path.join(d, name + ".png"))
    # The whole eval transform, to the float tensor (bit-exact target).
    for name, s, interp, rs, crop in RESIZE_CASES[:2]:
        im = Image.open(os.path.join(d, s)).convert("RGB")
        t = T.Compose([T.Resize(rs, interpolation=T.InterpolationMode.BILINEAR if interp == Image.BILINEAR
                                else T.InterpolationMode.BICUBIC), T.CenterCrop(crop), T.ToTensor(),
                       T.Normalize(CIFAR_MEAN, CIFAR_STD)])
        h5.create_dataset("pipeline/" + name, data=t(im).numpy())
    # CenterCrop rounds half to even (Python round): 40x37 -> crop 32 starts at (2, 4).
    im = natural_image(40, 37, 7)
    im.save(os.path.join(d, "crop_40x37.png"))
    T.CenterCrop(32)(im).save(os.path.join(d, "crop_40x37_32.png"))


def make_norm(h5):
    px = torch.arange(256, dtype=torch.uint8).view(1, 1, 256).expand(3, 1, 256).contiguous()
    img = Image.fromarray(px.permute(1, 2, 0).numpy())
    for name, mean, std in [("cifar", CIFAR_MEAN, CIFAR_STD), ("imagenet", IMAGENET_MEAN, IMAGENET_STD)]:
        t = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
        h5.create_dataset("norm/" + name, data=t(img).numpy().reshape(3, 256))


AUG_CASES = [("reflect", 0, 0, False), ("reflect", 8, 8, True), ("reflect", 3, 6, True),
             ("reflect", 4, 4, False), ("zero", 1, 7, False), ("zero", 8, 0, True)]


def make_augment(h5):
    """RandomCrop(32, padding=4, padding_mode) + RandomHorizontalFlip with the
    random draws fixed: F.pad -> F.crop(top, left) -> F.hflip."""
    import torchvision.transforms.functional as F
    src = Image.open(cifar_files()[0]).convert("RGB")
    h5.create_dataset("aug/src", data=np.array(src))
    for mode, top, left, flip in AUG_CASES:
        im = F.pad(src, 4, fill=0, padding_mode="reflect" if mode == "reflect" else "constant")
        im = F.crop(im, top, left, 32, 32)
        if flip:
            im = F.hflip(im)
        h5.create_dataset("aug/%s_%d_%d_%d" % (mode, top, left, int(flip)), data=np.array(im))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for sub in ["decode", "bad", "resize"]:
        os.makedirs(os.path.join(OUT, sub))
    check_cmyk_formula()
    with tempfile.TemporaryDirectory() as tmp:
        helper = os.path.join(tmp, "make_jpeg_variants")
        subprocess.run(["cc", "-O1", "-o", helper, os.path.join(HERE, "make_jpeg_variants.c"), "-ljpeg"],
                       check=True)
        with h5py.File(os.path.join(OUT, "expected.h5"), "w") as h5:
            h5.attrs["note"] = "Pillow %s, torchvision %s: see tests/datasets/make_fixtures.py" % (
                Image.__version__, "0.14")
            make_png_variants(h5, os.path.join(OUT, "decode"))
            make_jpeg_variants(h5, os.path.join(OUT, "decode"), helper)
            make_resize(h5, os.path.join(OUT, "resize"))
            make_norm(h5)
            make_augment(h5)
    make_bad(os.path.join(OUT, "bad"), os.path.join(OUT, "decode"))
    n = sum(len(f) for _, _, f in os.walk(OUT))
    size = sum(os.path.getsize(os.path.join(r, x)) for r, _, f in os.walk(OUT) for x in f)
    print("wrote %d files, %d bytes under %s" % (n, size, OUT))


if __name__ == "__main__":
    main()
