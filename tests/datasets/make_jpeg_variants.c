/*
 * Fixture helper for make_fixtures.py: writes the JPEG flavours Pillow
 * cannot produce (YCCK, CMYK without an Adobe marker, restart markers,
 * arithmetic coding, RGB without colour transform) with libjpeg directly.
 * Not part of the build; the script compiles and runs it, and Pillow then
 * decodes each result to give the expected pixels.
 *
 *   make_jpeg_variants MODE OUT.jpg W H IN.raw
 *   MODE: ycck | cmyk-noadobe (IN is W*H*4 CMYK) | restart | arith | rgb (IN is W*H*3)
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

int main(int argc, char **argv)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	int w, h, comps;
	unsigned char *buf;
	FILE *in, *out;
	const char *mode;

	if (argc != 6) {
		fprintf(stderr, "usage: %s MODE OUT W H IN\n", argv[0]);
		return 2;
	}
	mode = argv[1];
	w = atoi(argv[3]);
	h = atoi(argv[4]);
	comps = !strcmp(mode, "ycck") || !strcmp(mode, "cmyk-noadobe") ? 4 : 3;
	buf = malloc((size_t)w * h * comps);
	in = fopen(argv[5], "rb");
	if (!buf || !in || fread(buf, 1, (size_t)w * h * comps, in) != (size_t)w * h * comps) {
		fprintf(stderr, "cannot read %s\n", argv[5]);
		return 1;
	}
	fclose(in);
	out = fopen(argv[2], "wb");
	if (!out)
		return 1;
	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, out);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = comps;
	c.in_color_space = comps == 4 ? JCS_CMYK : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 90, TRUE);
	if (!strcmp(mode, "ycck")) {
		jpeg_set_colorspace(&c, JCS_YCCK);
	} else if (!strcmp(mode, "cmyk-noadobe")) {
		jpeg_set_colorspace(&c, JCS_CMYK);
		c.write_Adobe_marker = FALSE;
	} else if (!strcmp(mode, "restart")) {
		c.restart_interval = 2;
	} else if (!strcmp(mode, "arith")) {
		c.arith_code = TRUE;
	} else if (!strcmp(mode, "rgb")) {
		jpeg_set_colorspace(&c, JCS_RGB);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = buf + (size_t)c.next_scanline * w * comps;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	fclose(out);
	free(buf);
	return 0;
}
