/* executor/workers/embed/: the hand-written extractors, one image at a time: downsample,
 * profile, histogram, lbp, hog (embed.h describes each). */
#include <math.h>
#include <string.h>

#include "executor/workers/embed/internal.h"

void emb_downsample(const embedder *e, const float *x, float *out)
{
    size_t H = e->in.height, W = e->in.width, C = e->in.channels, f = (size_t)e->spec.factor;
    size_t oh = (H + f - 1) / f, ow = (W + f - 1) / f;
    for (size_t oy = 0; oy < oh; oy++) {
        size_t y0 = oy * f, y1 = y0 + f < H ? y0 + f : H;
        for (size_t ox = 0; ox < ow; ox++) {
            size_t x0 = ox * f, x1 = x0 + f < W ? x0 + f : W;
            float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
            for (size_t c = 0; c < C; c++) {
                float s = 0;
                for (size_t y = y0; y < y1; y++)
                    for (size_t xx = x0; xx < x1; xx++)
                        s += x[(y * W + xx) * C + c];
                out[(oy * ow + ox) * C + c] = s * inv;
            }
        }
    }
}

void emb_profile(const embedder *e, const float *x, float *out)
{
    size_t H = e->in.height, W = e->in.width, C = e->in.channels;
    float *rows = out, *cols = out + H * C;
    memset(out, 0, (H + W) * C * sizeof *out);
    for (size_t y = 0; y < H; y++)
        for (size_t xx = 0; xx < W; xx++)
            for (size_t c = 0; c < C; c++) {
                float v = x[(y * W + xx) * C + c];
                rows[y * C + c] += v;
                cols[xx * C + c] += v;
            }
    for (size_t i = 0; i < H * C; i++)
        rows[i] /= (float)W;
    for (size_t i = 0; i < W * C; i++)
        cols[i] /= (float)H;
}

void emb_histogram(const embedder *e, const float *x, float *out)
{
    size_t H = e->in.height, W = e->in.width, C = e->in.channels;
    size_t g = (size_t)e->spec.grid, bins = (size_t)e->spec.bins;
    memset(out, 0, g * g * C * bins * sizeof *out);
    for (size_t ry = 0; ry < g; ry++) {
        size_t y0 = ry * H / g, y1 = (ry + 1) * H / g;
        for (size_t rx = 0; rx < g; rx++) {
            size_t x0 = rx * W / g, x1 = (rx + 1) * W / g;
            float *h = out + (ry * g + rx) * C * bins;
            for (size_t y = y0; y < y1; y++)
                for (size_t xx = x0; xx < x1; xx++)
                    for (size_t c = 0; c < C; c++) {
                        float v = x[(y * W + xx) * C + c];
                        size_t b = v <= 0 ? 0 : v >= 1 ? bins - 1 : (size_t)(v * (float)bins);
                        if (b >= bins)
                            b = bins - 1;
                        h[c * bins + b] += 1;
                    }
            float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
            for (size_t i = 0; i < C * bins; i++)
                h[i] *= inv;
        }
    }
}

size_t emb_scratch_size(const embedder *e)
{
    size_t H = e->in.height, W = e->in.width;
    if (e->spec.kind == EMBED_LBP)
        return H * W;
    if (e->spec.kind == EMBED_HOG) {
        size_t cy = H / (size_t)e->spec.cell, cx = W / (size_t)e->spec.cell;
        return H * W + cy * cx * (size_t)e->spec.bins;
    }
    return 0;
}

static void grey_image(const embedder *e, const float *x, float *g)
{
    size_t n = e->in.height * e->in.width, C = e->in.channels;
    for (size_t i = 0; i < n; i++)
        g[i] = emb_grey(x + i * C, C);
}

/* Index of each 8-bit pattern among the 58 uniform ones (at most two 0/1 transitions around
 * the circle), in increasing order; 58 for the others. */
static void uniform_table(uint8_t map[256])
{
    int next = 0;
    for (int p = 0; p < 256; p++) {
        int t = 0;
        for (int i = 0; i < 8; i++)
            t += ((p >> i) & 1) != ((p >> ((i + 1) & 7)) & 1);
        map[p] = (uint8_t)(t <= 2 ? next++ : 58);
    }
}

void emb_lbp(const embedder *e, const float *x, float *out, float *scratch)
{
    static const int dy[8] = {-1, -1, -1, 0, 1, 1, 1, 0};
    static const int dx[8] = {-1, 0, 1, 1, 1, 0, -1, -1};
    size_t H = e->in.height, W = e->in.width, g = (size_t)e->spec.grid;
    uint8_t map[256];
    uniform_table(map);
    float *gi = scratch;
    grey_image(e, x, gi);
    memset(out, 0, g * g * 59 * sizeof *out);
    for (size_t y = 1; y + 1 < H; y++) {
        size_t ry = (y - 1) * g / (H - 2);
        for (size_t xx = 1; xx + 1 < W; xx++) {
            size_t rx = (xx - 1) * g / (W - 2);
            float c = gi[y * W + xx];
            unsigned code = 0;
            for (int k = 0; k < 8; k++) {
                size_t yy = (size_t)((long)y + dy[k]), xk = (size_t)((long)xx + dx[k]);
                code |= (unsigned)(gi[yy * W + xk] >= c) << k;
            }
            out[(ry * g + rx) * 59 + map[code]] += 1;
        }
    }
    for (size_t ry = 0; ry < g; ry++) {
        size_t ny = (ry + 1) * (H - 2) / g - ry * (H - 2) / g;
        for (size_t rx = 0; rx < g; rx++) {
            size_t nx = (rx + 1) * (W - 2) / g - rx * (W - 2) / g;
            float *h = out + (ry * g + rx) * 59;
            size_t cnt = ny * nx;
            if (cnt)
                for (int b = 0; b < 59; b++)
                    h[b] /= (float)cnt;
        }
    }
}

void emb_hog(const embedder *e, const float *x, float *out, float *scratch)
{
    size_t H = e->in.height, W = e->in.width;
    size_t cell = (size_t)e->spec.cell, bins = (size_t)e->spec.bins, blk = (size_t)e->spec.block;
    size_t cy = H / cell, cx = W / cell;
    float *gi = scratch, *hist = scratch + H * W;
    grey_image(e, x, gi);
    memset(hist, 0, cy * cx * bins * sizeof *hist);
    const float pi = 3.14159265358979f, bw = pi / (float)bins;
    for (size_t y = 0; y < cy * cell; y++) {
        size_t yu = y > 0 ? y - 1 : 0, yd = y + 1 < H ? y + 1 : H - 1;
        for (size_t xx = 0; xx < cx * cell; xx++) {
            size_t xl = xx > 0 ? xx - 1 : 0, xr = xx + 1 < W ? xx + 1 : W - 1;
            float gx = gi[y * W + xr] - gi[y * W + xl];
            float gy = gi[yd * W + xx] - gi[yu * W + xx];
            float mag = sqrtf(gx * gx + gy * gy);
            if (mag == 0)
                continue;
            float ang = atan2f(gy, gx);
            if (ang < 0)
                ang += pi;
            if (ang >= pi)
                ang -= pi;
            float pos = ang / bw - 0.5f;
            float fl = floorf(pos);
            float frac = pos - fl;
            long b0 = (long)fl;
            size_t i0 = (size_t)((b0 + (long)bins) % (long)bins);
            size_t i1 = (i0 + 1) % bins;
            float *h = hist + ((y / cell) * cx + xx / cell) * bins;
            h[i0] += mag * (1 - frac);
            h[i1] += mag * frac;
        }
    }
    size_t per = blk * blk * bins;
    float *o = out;
    for (size_t by = 0; by + blk <= cy; by++) {
        for (size_t bx = 0; bx + blk <= cx; bx++) {
            for (size_t j = 0; j < blk; j++)
                for (size_t i = 0; i < blk; i++)
                    memcpy(o + (j * blk + i) * bins, hist + ((by + j) * cx + bx + i) * bins,
                           bins * sizeof *o);
            /* L2-Hys: normalise, clip at 0.2, normalise again. */
            double s = 0;
            for (size_t k = 0; k < per; k++)
                s += (double)o[k] * o[k];
            float inv = (float)(1.0 / sqrt(s + 1e-6));
            s = 0;
            for (size_t k = 0; k < per; k++) {
                o[k] *= inv;
                if (o[k] > 0.2f)
                    o[k] = 0.2f;
                s += (double)o[k] * o[k];
            }
            inv = (float)(1.0 / sqrt(s + 1e-6));
            for (size_t k = 0; k < per; k++)
                o[k] *= inv;
            o += per;
        }
    }
}
