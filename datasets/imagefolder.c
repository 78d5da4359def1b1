/* datasets/: image folders: ROOT/<class>/<image>.png|.jpg|.jpeg, classes sorted by name. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/util.h"
#include "datasets/internal.h"

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void list_add(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = xstrdup(s);
}

static void list_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                   strcasecmp(dot, ".jpeg") == 0);
}

/* Entries of dir (not starting with '.') that are folders (want_dirs) or image files. */
static int list_dir(const char *dir, bool want_dirs, name_list *out, char **err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOTDIR)
            return ds_fail(err, dir, "not a folder (an image folder dataset needs a folder with "
                           "one sub-folder per class)");
        return ds_fail(err, dir, "cannot open folder: %s", strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!want_dirs && !image_name(e->d_name))
            continue;
        char *full = xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        bool ok = stat(full, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode)
                                                     : S_ISREG(st.st_mode));
        free(full);
        if (ok)
            list_add(out, e->d_name);
    }
    closedir(d);
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

int ds_read_imagefolder(ds_ctx *ctx, dataset *ds, char **err)
{
    const dataset_spec *spec = ctx->spec;
    const char *root = spec->path;
    name_list classes = {0}, files = {0};
    size_t *file_class = NULL, fcap = 0;
    char *path = NULL;
    ds_buf b = {0};
    int rc = -1;

    if (spec->channels != 0 && spec->channels != 1 && spec->channels != 3)
        return ds_fail(err, root, "channels must be 0 (as the images), 1 or 3, not %d",
                       spec->channels);
    if (list_dir(root, true, &classes, err) != 0)
        return -1;
    if (classes.n == 0) {
        ds_fail(err, root, "no class sub-folders (an image folder dataset has one sub-folder "
                "per class)");
        goto done;
    }
    if (classes.n > DATASET_MAX_CLASSES ||
        (spec->num_classes > 0 && (size_t)spec->num_classes < classes.n)) {
        ds_fail(err, root, "%zu class folders but num_classes is %d", classes.n,
                spec->num_classes);
        goto done;
    }
    for (size_t c = 0; c < classes.n; c++) {
        name_list in = {0};
        char *dir = xasprintf("%s/%s", root, classes.v[c]);
        int lrc = list_dir(dir, false, &in, err);
        free(dir);
        if (lrc != 0) {
            list_free(&in);
            goto done;
        }
        for (size_t i = 0; i < in.n; i++) {
            char *rel = xasprintf("%s/%s", classes.v[c], in.v[i]);
            list_add(&files, rel);
            free(rel);
            if (files.n > fcap) {
                fcap = files.cap;
                file_class = xrealloc(file_class, fcap * sizeof *file_class);
            }
            file_class[files.n - 1] = c;
        }
        list_free(&in);
    }
    if (files.n == 0) {
        ds_fail(err, root, "no PNG or JPEG images (*.png, *.jpg, *.jpeg) in the %zu class "
                "folders", classes.n);
        goto done;
    }
    size_t start, count;
    if (ds_slice(spec, files.n, root, &start, &count, err) != 0)
        goto done;
    size_t per = 0;
    const char *first = NULL;
    for (size_t i = 0; i < files.n; i++) {
        free(path);
        path = xasprintf("%s/%s", root, files.v[i]);
        if (ds_read_file(ctx, path, files.v[i], &b, err) != 0)
            goto done;
        ds_image img;
        const char *why;
        char whybuf[256];
        if (ds_decode_image(b.data, b.len, ds->channels ? (int)ds->channels : spec->channels,
                            ctx->max_bytes, &img, &why, whybuf, sizeof whybuf) != 0) {
            ds_fail(err, path, "%s", why);
            goto done;
        }
        ds_buf_free(&b);
        if (!first) {
            first = files.v[i];
            ds->width = img.width;
            ds->height = img.height;
            ds->channels = img.channels;
            per = img.width * img.height * img.channels;
            size_t bytes;
            if (!ds_mul(per, count, &bytes) || bytes > ctx->max_bytes) {
                free(img.pixels);
                ds_fail(err, root, "%zu images of %zux%zux%zu pixels are more than max_bytes",
                        count, img.width, img.height, img.channels);
                goto done;
            }
            ds->u8 = xmalloc(bytes ? bytes : 1);
        } else if (img.width != ds->width || img.height != ds->height) {
            ds_fail(err, path, "image is %zux%zu pixels, the first image ('%s') is %zux%zu; all "
                    "images must have the same size", img.width, img.height, first, ds->width,
                    ds->height);
            free(img.pixels);
            goto done;
        }
        if (i >= start && i < start + count)
            memcpy(ds->u8 + (i - start) * per, img.pixels, per);
        free(img.pixels);
    }
    ds->kind = DATASET_IMAGES;
    ds->pixel = DATASET_PIXEL_U8;
    ds->total = files.n;
    ds->start = start;
    ds->n = count;
    ds->num_classes = spec->num_classes > 0 ? spec->num_classes : (int32_t)classes.n;
    ds->labels = xmalloc((count ? count : 1) * sizeof *ds->labels);
    for (size_t i = 0; i < count; i++)
        ds->labels[i] = (int32_t)file_class[start + i];
    ds->class_names = xcalloc((size_t)ds->num_classes, sizeof *ds->class_names);
    for (size_t c = 0; c < (size_t)ds->num_classes; c++)
        ds->class_names[c] = c < classes.n ? xstrdup(classes.v[c]) : xasprintf("%zu", c);
    rc = 0;
done:
    free(path);
    ds_buf_free(&b);
    free(file_class);
    list_free(&classes);
    list_free(&files);
    return rc;
}
