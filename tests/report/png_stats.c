/*
 * Reads a PNG screenshot and prints how much of it is drawn: the fraction of
 * pixels that are not (near) white and the number of distinct colours.  The
 * report test uses it to tell a rendered page from a blank or broken one.
 * usage: png_stats FILE MIN_NONWHITE MIN_COLOURS   (exit 0 if both are met)
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	png_image img;
	unsigned char *buf;

	if (argc != 4) {
		fprintf(stderr, "usage: png_stats FILE MIN_NONWHITE MIN_COLOURS\n");
		return 2;
	}
	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&img, argv[1])) {
		fprintf(stderr, "%s: %s\n", argv[1], img.message);
		return 1;
	}
	img.format = PNG_FORMAT_RGB;
	buf = malloc(PNG_IMAGE_SIZE(img));
	if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
		fprintf(stderr, "%s: cannot decode\n", argv[1]);
		return 1;
	}
	size_t n = (size_t)img.width * img.height, nonwhite = 0, colours = 0;
	unsigned char *seen = calloc(1 << 21, 1); /* 7 bits per channel */
	for (size_t i = 0; i < n; i++) {
		unsigned r = buf[3 * i], g = buf[3 * i + 1], b = buf[3 * i + 2];
		nonwhite += r < 240 || g < 240 || b < 240;
		unsigned key = (r >> 1) << 14 | (g >> 1) << 7 | (b >> 1);
		if (!seen[key]) {
			seen[key] = 1;
			colours++;
		}
	}
	double frac = (double)nonwhite / (double)n;
	printf("%s: %ux%u, %.1f%% drawn, %zu colours\n", argv[1], img.width, img.height,
	       100 * frac, colours);
	free(seen);
	free(buf);
	return frac >= atof(argv[2]) && colours >= (size_t)atol(argv[3]) ? 0 : 1;
}
