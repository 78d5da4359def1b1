#include "executor/workers/featstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* The header of docs/jobs.md "Feature files". Little-endian: these machines are, and a
 * big-endian host refuses the files rather than misreading them (see host_is_le). */
static const char featfile_magic[8] = {'R', 'Q', 'F', 'E', 'A', 'T', '1', '\0'};
#define FEATFILE_HEADER 24

static bool host_is_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static bool valid_hash(const char *hash)
{
    if (!hash || strlen(hash) != HASH_HEX_LEN)
        return false;
    for (const char *p = hash; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

char *featstore_relpath(const char *hash)
{
    return xasprintf("features/%.2s/%s.rqf", hash, hash);
}

static int make_dir(const char *path, char **err)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    *err = xasprintf("cannot create %s: %s", path, strerror(errno));
    return -1;
}

/* Removes "<hash>.rqf.tmp*" in dir: what an earlier attempt of the same job left when its
 * worker was killed mid-write (kill -9, OOM, power loss). Only the lease holder of a job
 * writes its hash, so such a file is never a live writer's, except one whose lease was lost:
 * its rename then fails and its result is discarded anyway. */
static void remove_stale_temps(const char *dir, const char *hash)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char prefix[HASH_HEX_LEN + 16];
    snprintf(prefix, sizeof prefix, "%s.rqf.tmp", hash);
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, plen) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* Writes all of buf or fails with errno set. */
static bool write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static bool sizes_fit(uint64_t rows, uint32_t dim, int32_t num_classes, uint64_t *total)
{
    /* rows·dim·4 + rows·4 + header must not overflow 64 bits. */
    if (dim == 0 || rows > (UINT64_MAX - FEATFILE_HEADER) / 4 / ((uint64_t)dim + 1))
        return false;
    *total = FEATFILE_HEADER + rows * dim * 4 + (num_classes > 0 ? rows * 4 : 0);
    return true;
}

int featstore_write(const char *data_dir, const char *hash, const float *x, const int32_t *y,
                    uint64_t rows, uint32_t dim, int32_t num_classes, uint64_t *bytes,
                    char **err)
{
    uint64_t total;
    if (!host_is_le()) {
        *err = xstrdup("feature files are little-endian; this host is not");
        return -1;
    }
    if (!valid_hash(hash)) {
        *err = xasprintf("invalid feature hash \"%s\"", hash ? hash : "");
        return -1;
    }
    if (!sizes_fit(rows, dim, num_classes, &total) || num_classes < 0 ||
        (num_classes > 0 && !y)) {
        *err = xasprintf("invalid feature shape %llu × %u (classes %d)",
                         (unsigned long long)rows, dim, num_classes);
        return -1;
    }
    char *features = xasprintf("%s/features", data_dir);
    char *dir = xasprintf("%s/features/%.2s", data_dir, hash);
    char *path = xasprintf("%s/%s.rqf", dir, hash);
    char *tmp = xasprintf("%s.tmp%ld", path, (long)getpid());
    int rc = -1, fd = -1;
    if (make_dir(data_dir, err) != 0 || make_dir(features, err) != 0 || make_dir(dir, err) != 0)
        goto out;
    remove_stale_temps(dir, hash);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = xasprintf("cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char header[FEATFILE_HEADER];
    memcpy(header, featfile_magic, 8);
    memcpy(header + 8, &rows, 8);
    memcpy(header + 16, &dim, 4);
    memcpy(header + 20, &num_classes, 4);
    if (!write_all(fd, header, sizeof header) ||
        !write_all(fd, x, (size_t)(rows * dim * sizeof(float))) ||
        (num_classes > 0 && !write_all(fd, y, (size_t)(rows * sizeof(int32_t)))) ||
        fsync(fd) != 0) {
        *err = xasprintf("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        *err = xasprintf("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        *err = xasprintf("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    /* The rename is durable only once the directory entry is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (bytes)
        *bytes = total;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(features);
    free(dir);
    free(path);
    free(tmp);
    return rc;
}

static bool read_all(FILE *f, void *buf, size_t len)
{
    return len == 0 || fread(buf, 1, len, f) == len;
}

int featstore_read(const char *data_dir, const char *hash, featfile *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (!host_is_le()) {
        *err = xstrdup("feature files are little-endian; this host is not");
        return -1;
    }
    if (!valid_hash(hash)) {
        *err = xasprintf("invalid feature hash \"%s\"", hash ? hash : "");
        return -1;
    }
    char *rel = featstore_relpath(hash);
    char *path = xasprintf("%s/%s", data_dir, rel);
    free(rel);
    int rc = -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = xasprintf("cannot open feature file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    struct stat st;
    unsigned char header[FEATFILE_HEADER];
    uint64_t rows, total;
    uint32_t dim;
    int32_t num_classes;
    if (fstat(fileno(f), &st) != 0 || !read_all(f, header, sizeof header) ||
        memcmp(header, featfile_magic, 8) != 0) {
        *err = xasprintf("feature file %s is corrupt: bad header", path);
        goto out;
    }
    memcpy(&rows, header + 8, 8);
    memcpy(&dim, header + 16, 4);
    memcpy(&num_classes, header + 20, 4);
    if (num_classes < 0 || !sizes_fit(rows, dim, num_classes, &total) ||
        (uint64_t)st.st_size != total) {
        *err = xasprintf("feature file %s is corrupt: %lld bytes for %llu × %u features",
                         path, (long long)st.st_size, (unsigned long long)rows, dim);
        goto out;
    }
    out->rows = rows;
    out->dim = dim;
    out->num_classes = num_classes;
    out->x = xmalloc(rows * dim * sizeof(float) + 1);
    if (!read_all(f, out->x, (size_t)(rows * dim * sizeof(float)))) {
        *err = xasprintf("cannot read feature file %s: %s", path, strerror(errno));
        goto out;
    }
    if (num_classes > 0) {
        out->y = xmalloc(rows * sizeof(int32_t) + 1);
        if (!read_all(f, out->y, (size_t)(rows * sizeof(int32_t)))) {
            *err = xasprintf("cannot read feature file %s: %s", path, strerror(errno));
            goto out;
        }
        for (uint64_t i = 0; i < rows; i++)
            if (out->y[i] < 0 || out->y[i] >= num_classes) {
                *err = xasprintf("feature file %s is corrupt: label %d of row %llu is not in "
                                 "[0, %d)",
                                 path, out->y[i], (unsigned long long)i, num_classes);
                goto out;
            }
    }
    rc = 0;
out:
    fclose(f);
    free(path);
    if (rc != 0)
        featfile_free(out);
    return rc;
}

void featfile_free(featfile *f)
{
    free(f->x);
    free(f->y);
    memset(f, 0, sizeof *f);
}
