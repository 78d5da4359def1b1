/* executor/workers/featstore.c: feature files written and read back byte for byte (sizes
 * computed by hand from the format of docs/jobs.md "Feature files"), temp files a killed writer
 * left are removed by the next write of the same hash (and only those), a write that cannot
 * happen names the path and the cause and leaves nothing behind, and corrupt files are
 * refused. The disk-full and read-only cases on a real filesystem are in
 * tests/integration/test_faults.sh. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "executor/workers/featstore.h"

#define HASH "ab23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER "ab99999999abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rankql-featstore.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *path_in(const char *rel)
{
    return xasprintf("%s/%s", dir, rel);
}

static void touch(const char *rel, const char *content)
{
    char *p = path_in(rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(p);
}

static bool exists(const char *rel)
{
    char *p = path_in(rel);
    struct stat st;
    bool r = stat(p, &st) == 0;
    free(p);
    return r;
}

/* How many entries of features/ab/ start with prefix. */
static int count_prefix(const char *prefix)
{
    char *p = path_in("features/ab");
    DIR *d = opendir(p);
    free(p);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void test_roundtrip(void **state)
{
    (void)state;
    const float x[6] = {1.5f, -2, 0, 3.25f, 1e-3f, 7};
    const int32_t y[3] = {2, 0, 1};
    uint64_t bytes = 0;
    char *err = NULL;
    assert_int_equal(featstore_write(dir, HASH, x, y, 3, 2, 3, &bytes, &err), 0);
    /* 24-byte header + 3·2 floats + 3 labels. */
    assert_int_equal(bytes, 24 + 6 * 4 + 3 * 4);
    char *rel = featstore_relpath(HASH);
    assert_string_equal(rel, "features/ab/" HASH ".rqf");
    char *p = path_in(rel);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 60);
    free(p);
    free(rel);
    featfile f;
    assert_int_equal(featstore_read(dir, HASH, &f, &err), 0);
    assert_int_equal(f.rows, 3);
    assert_int_equal(f.dim, 2);
    assert_int_equal(f.num_classes, 3);
    assert_memory_equal(f.x, x, sizeof x);
    assert_memory_equal(f.y, y, sizeof y);
    featfile_free(&f);
    assert_int_equal(count_prefix(HASH ".rqf.tmp"), 0);
}

/* A worker killed with -9 mid-write leaves <hash>.rqf.tmp<pid>; the job runs again (same hash)
 * and its write clears that debris, but not another hash's temp file nor other files. */
static void test_stale_temps_removed(void **state)
{
    (void)state;
    char *err = NULL;
    const float x[2] = {1, 2};
    assert_int_equal(featstore_write(dir, OTHER, x, NULL, 1, 2, 0, NULL, &err), 0);
    touch("features/ab/" HASH ".rqf.tmp4242", "half a file");
    touch("features/ab/" HASH ".rqf.tmp7", "");
    touch("features/ab/" OTHER ".rqf.tmp99", "another job's");
    touch("features/ab/notes.txt", "unrelated");
    assert_int_equal(count_prefix(HASH ".rqf.tmp"), 2);
    uint64_t bytes = 0;
    assert_int_equal(featstore_write(dir, HASH, x, NULL, 2, 1, 0, &bytes, &err), 0);
    assert_int_equal(bytes, 24 + 2 * 4);
    assert_int_equal(count_prefix(HASH ".rqf.tmp"), 0);
    assert_true(exists("features/ab/" HASH ".rqf"));
    assert_true(exists("features/ab/" OTHER ".rqf.tmp99"));
    assert_true(exists("features/ab/" OTHER ".rqf"));
    assert_true(exists("features/ab/notes.txt"));
}

/* The data directory is a regular file: the error names the directory it could not create and
 * the cause, and nothing is written. (Root ignores file modes, so EACCES cannot be shown here;
 * ENOSPC and EROFS on a real filesystem: tests/integration/test_faults.sh case 4.) */
static void test_write_error_names_path(void **state)
{
    (void)state;
    touch("file", "x");
    char *data = path_in("file");
    const float x[1] = {1};
    char *err = NULL;
    assert_int_equal(featstore_write(data, HASH, x, NULL, 1, 1, 0, NULL, &err), -1);
    char *want = xasprintf("cannot create %s/features: %s", data, strerror(ENOTDIR));
    assert_string_equal(err, want);
    free(want);
    free(err);
    free(data);
}

/* A file cut short (a copy interrupted, a disk that lied) is refused, naming it. */
static void test_truncated_refused(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4};
    char *err = NULL;
    assert_int_equal(featstore_write(dir, HASH, x, NULL, 2, 2, 0, NULL, &err), 0);
    char *rel = featstore_relpath(HASH);
    char *p = path_in(rel);
    assert_int_equal(truncate(p, 24 + 3 * 4), 0);
    featfile f;
    assert_int_equal(featstore_read(dir, HASH, &f, &err), -1);
    char *want = xasprintf("feature file %s is corrupt: 36 bytes for 2 × 2 features", p);
    assert_string_equal(err, want);
    free(want);
    free(err);
    free(p);
    free(rel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_temps_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_names_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
