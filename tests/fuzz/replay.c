/* Runs saved fuzz inputs (files, or every file of a directory) through a target's
 * LLVMFuzzerTestOneInput without libFuzzer: the test suite's replay, built by gcc in each lane. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		if (r == 0)
			break;
		len += r;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "fuzz-replay: %s: read error\n", path);
		free(buf);
		return -1;
	}
	/* named first, so that a sanitizer report that follows is attributed */
	fprintf(stderr, "fuzz-replay: %s (%zu bytes)\n", path, len);
	/* as libFuzzer does: a copy of exactly len bytes, so reads past the end are caught */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, size_t *n)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*n)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	struct dirent *de;
	char **names = NULL;
	size_t cnt = 0;
	int rc = 0;
	if (!d) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char **nn = realloc(names, (cnt + 1) * sizeof(*names));
		if (!nn || asprintf(&nn[cnt], "%s/%s", path, de->d_name) < 0) {
			rc = -1;
			names = nn ? nn : names;
			break;
		}
		names = nn;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(names, cnt, sizeof(*names), cmp_names);
	for (size_t i = 0; i < cnt; i++) {
		if (rc == 0 && run_path(names[i], n) < 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	size_t n = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &n) < 0)
			return 1;
	printf("replayed %zu inputs\n", n);
	return 0;
}
