/* The products of rows with one panel, in one weight format: included by products.h once per format (PFX) with
 * ACCV (the accumulator vector), WV (a weight vector), XB (a broadcast activation group), GROUP_X (bytes of one
 * activation group: a value, a bf16 pair, an int8 quad), W_LOAD(p), X_SPLAT(p), MADD(acc, w, x), ZERO_ACC.
 *
 * A group of k is G * 64 bytes of panel (one 64-byte line per gate) = A = G * NV vectors; rows are read one group
 * at a time. One row keeps S independent partial sums (>= 8 chains in flight); several rows use register blocks
 * of R rows x C vectors, k walked in chunks that stay in L1 while every block of rows passes over them.
 */
#define PF(name) FN(PASTE(PASTE(name, _), PFX))

FRNN_ALWAYS_INLINE void PF(panel_dot)(const int A, ptrdiff_t groups, const char *w, const char *x, ACCV *acc)
{
    const int S = A >= 8 ? 1 : A >= 4 ? 2 : A >= 2 ? 4 : 8;
    ACCV sum[8][4 * 4];
    for (int s = 0; s < S; ++s)
        for (int a = 0; a < A; ++a) sum[s][a] = ZERO_ACC;
    ptrdiff_t g = 0;
    for (; g + S <= groups; g += S) {
        for (int s = 0; s < S; ++s) {
            const XB xb = X_SPLAT(x + (g + s) * GROUP_X);
            const char *wg = w + (g + s) * A * FRNN_VB;
            for (int a = 0; a < A; ++a) sum[s][a] = MADD(sum[s][a], W_LOAD(wg + a * FRNN_VB), xb);
        }
    }
    for (; g < groups; ++g) {
        const XB xb = X_SPLAT(x + g * GROUP_X);
        const char *wg = w + g * A * FRNN_VB;
        for (int a = 0; a < A; ++a) sum[0][a] = MADD(sum[0][a], W_LOAD(wg + a * FRNN_VB), xb);
    }
    for (int a = 0; a < A; ++a) {
        acc[a] = sum[0][a];
        for (int s = 1; s < S; ++s) acc[a] += sum[s][a];
    }
}

/* Vectors c0 .. c0+C-1 of the panel for R rows of x (row stride ldx bytes), groups [g0, g1): acc[r*A + c0 + c] gets
 * the sums (first chunk) or adds them. R and C are constants after inlining, so the sums live in registers. */
FRNN_ALWAYS_INLINE void PF(dot_block)(const int A, const int R, const int C, int c0, ptrdiff_t g0, ptrdiff_t g1,
                                      const char *w, const char *x, ptrdiff_t ldx, ACCV *acc, int first)
{
    ACCV sum[RMAX][FRNN_ACC];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) sum[r][c] = first ? ZERO_ACC : acc[r * A + c0 + c];
    const char *wg = w + (g0 * A + c0) * FRNN_VB;
    for (ptrdiff_t g = g0; g < g1; ++g, wg += A * FRNN_VB) {
        WV wv[FRNN_ACC];
        for (int c = 0; c < C; ++c) wv[c] = W_LOAD(wg + c * FRNN_VB);
        for (int r = 0; r < R; ++r) {
            const XB xb = X_SPLAT(x + r * ldx + g * GROUP_X);
            for (int c = 0; c < C; ++c) sum[r][c] = MADD(sum[r][c], wv[c], xb);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r * A + c0 + c] = sum[r][c];
}

#define FRNN_ROWS_CASE(R) \
    case R: PF(dot_block)(A, R, C, c0, g0, g1, w, x + b0 * ldx, ldx, acc + b0 * A, g0 == 0); break;

/* The dot products of n (1..NSUP) rows of x with one panel (groups of k), into acc[r*A + a]. */
FRNN_ALWAYS_INLINE void PF(panel_rows)(const int G, ptrdiff_t n, ptrdiff_t groups, const char *w, const char *x,
                                       ptrdiff_t ldx, ACCV *acc)
{
    const int A = G * NV, C = FN(block_cols)(A);
    const int RB = FRNN_ACC / C < RMAX ? FRNN_ACC / C : RMAX;
    const ptrdiff_t KC = FRNN_KC / G;
    if (n == 1) {
        PF(panel_dot)(A, groups, w, x, acc);
        return;
    }
    if (groups == 0) {
        for (ptrdiff_t a = 0; a < n * A; ++a) acc[a] = ZERO_ACC;
        return;
    }
    const ptrdiff_t blocks = (n + RB - 1) / RB;
    for (ptrdiff_t g0 = 0; g0 < groups; g0 += KC) {
        const ptrdiff_t g1 = g0 + KC < groups ? g0 + KC : groups;
        for (int c0 = 0; c0 < A; c0 += C) {
            for (ptrdiff_t b = 0, b0 = 0, R; b < blocks; ++b, b0 += R) {
                R = n / blocks + (b < n % blocks);  /* near-equal blocks: 8 rows as 4 + 4, not 6 + 2 */
                switch (R) {
                    FRNN_ROWS_CASE(1) FRNN_ROWS_CASE(2) FRNN_ROWS_CASE(3) FRNN_ROWS_CASE(4)
                    FRNN_ROWS_CASE(5) FRNN_ROWS_CASE(6) FRNN_ROWS_CASE(7) FRNN_ROWS_CASE(8)
                }
            }
        }
    }
}

#undef FRNN_ROWS_CASE
#undef PF
