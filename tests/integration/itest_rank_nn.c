/* An independent brute-force 1-NN for tests/integration/test_rank.sh: reads Fashion-MNIST's
 * IDX gzip files with zlib alone (not datasets/), applies the same data mutations a ranking
 * query names, and prints the number of misclassified test rows and the test size. Distances
 * are exact integer sums over the raw pixels (the "raw" extractor's features up to a scale),
 * ties going to the lowest train row. None of rankql's readers, extractors or proxies is
 * used, so a bug there cannot hide behind the same bug here.
 *
 *   itest_rank_nn TRAIN_IMAGES TRAIN_LABELS START STOP TEST_IMAGES TEST_LABELS START STOP
 *                 [--change OTHER_IMAGES OTHER_LABELS OTHER_START BASE OTHER]
 *                 [--labels-csv FILE BASE OTHER]
 *
 * BASE and OTHER are comma-separated row indices (relative to the slices). --change gives
 * train row BASE[k] the pixels and label of row OTHER[k] of the other slice; --labels-csv
 * gives it the label on line OTHER[k] of a one-column CSV after its header line. Output:
 * "ERRORS TEST_SIZE". Exit status 2 on bad arguments or unreadable files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct set {
    size_t n, dim;
    uint8_t *x;     /* n × dim pixels */
    int *y;         /* n labels */
} set;

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "itest_rank_nn: %s: %s\n", what, arg);
    exit(2);
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Rows [start, stop) of an IDX file (images: magic 0x803, labels: 0x801). */
static unsigned char *read_idx(const char *path, size_t start, size_t stop, size_t *row_bytes)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        die("cannot open", path);
    unsigned char hdr[16];
    if (gzread(f, hdr, 8) != 8)
        die("short header", path);
    uint32_t magic = be32(hdr), n = be32(hdr + 4), row = 1;
    if (magic == 0x803) {
        if (gzread(f, hdr + 8, 8) != 8)
            die("short header", path);
        row = be32(hdr + 8) * be32(hdr + 12);
    } else if (magic != 0x801) {
        die("not an IDX image or label file", path);
    }
    if (stop > n || start > stop)
        die("slice out of range", path);
    if (start && gzseek(f, (z_off_t)(start * row), SEEK_CUR) < 0)
        die("cannot seek", path);
    size_t len = (stop - start) * row;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf || gzread(f, buf, (unsigned)len) != (int)len)
        die("short read", path);
    gzclose(f);
    *row_bytes = row;
    return buf;
}

static set load(char **argv)
{
    size_t start = strtoul(argv[2], NULL, 10), stop = strtoul(argv[3], NULL, 10), one;
    set s = {.n = stop - start};
    s.x = read_idx(argv[0], start, stop, &s.dim);
    unsigned char *labels = read_idx(argv[1], start, stop, &one);
    s.y = malloc((s.n + 1) * sizeof *s.y);
    for (size_t i = 0; i < s.n; i++)
        s.y[i] = labels[i];
    free(labels);
    return s;
}

static size_t parse_list(const char *text, size_t **out)
{
    size_t n = 0, cap = 16;
    *out = malloc(cap * sizeof **out);
    for (const char *p = text; *p;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            die("bad index list", text);
        if (n == cap)
            *out = realloc(*out, (cap *= 2) * sizeof **out);
        (*out)[n++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static void check_lists(size_t nb, size_t no, const char *arg)
{
    if (nb != no)
        die("index lists of different lengths", arg);
}

int main(int argc, char **argv)
{
    if (argc < 9)
        die("usage", "TRAIN_IMAGES TRAIN_LABELS START STOP TEST_IMAGES TEST_LABELS START STOP …");
    set train = load(argv + 1), test = load(argv + 5);
    if (train.dim != test.dim)
        die("dimension mismatch", argv[5]);
    for (int a = 9; a < argc;) {
        size_t *base = NULL, *other = NULL, nb, no;
        if (strcmp(argv[a], "--change") == 0 && a + 5 < argc) {
            char *sl[4] = {argv[a + 1], argv[a + 2], argv[a + 3], NULL};
            nb = parse_list(argv[a + 4], &base);
            no = parse_list(argv[a + 5], &other);
            check_lists(nb, no, argv[a + 5]);
            size_t maxo = 0;
            for (size_t k = 0; k < no; k++)
                maxo = other[k] + 1 > maxo ? other[k] + 1 : maxo;
            char stop[32];
            snprintf(stop, sizeof stop, "%zu", strtoul(argv[a + 3], NULL, 10) + maxo);
            sl[3] = stop;
            set o = load(sl);
            for (size_t k = 0; k < nb; k++) {
                if (base[k] >= train.n)
                    die("base index out of range", argv[a + 4]);
                memcpy(train.x + base[k] * train.dim, o.x + other[k] * o.dim, train.dim);
                train.y[base[k]] = o.y[other[k]];
            }
            free(o.x);
            free(o.y);
            a += 6;
        } else if (strcmp(argv[a], "--labels-csv") == 0 && a + 3 < argc) {
            FILE *f = fopen(argv[a + 1], "r");
            if (!f)
                die("cannot open", argv[a + 1]);
            char line[64];
            int *labels = NULL;
            size_t n = 0;
            if (!fgets(line, sizeof line, f)) /* the header */
                die("empty file", argv[a + 1]);
            while (fgets(line, sizeof line, f)) {
                labels = realloc(labels, (n + 1) * sizeof *labels);
                labels[n++] = atoi(line);
            }
            fclose(f);
            nb = parse_list(argv[a + 2], &base);
            no = parse_list(argv[a + 3], &other);
            check_lists(nb, no, argv[a + 3]);
            for (size_t k = 0; k < nb; k++) {
                if (base[k] >= train.n || other[k] >= n)
                    die("index out of range", argv[a + 2]);
                train.y[base[k]] = labels[other[k]];
            }
            free(labels);
            a += 4;
        } else {
            die("unknown or incomplete option", argv[a]);
        }
        free(base);
        free(other);
    }
    size_t errors = 0;
    for (size_t t = 0; t < test.n; t++) {
        const uint8_t *q = test.x + t * test.dim;
        uint64_t best = UINT64_MAX;
        size_t arg = 0;
        for (size_t r = 0; r < train.n; r++) {
            const uint8_t *p = train.x + r * train.dim;
            uint64_t d = 0;
            for (size_t k = 0; k < train.dim; k++) {
                int v = (int)p[k] - (int)q[k];
                d += (uint64_t)(v * v);
            }
            if (d < best) {
                best = d;
                arg = r;
            }
        }
        errors += train.y[arg] != test.y[t];
    }
    printf("%zu %zu\n", errors, test.n);
    free(train.x);
    free(train.y);
    free(test.x);
    free(test.y);
    return 0;
}
