/* Fused HBV: forward time loop and hand-written adjoint (reverse-mode) pass.
 *
 * The equations and the choice of subgradients at the non-smooth points are those of the
 * reference PyTorch loop in dplpaper/models/hbv.py (the specification):
 *   relu(x)   -> gradient only where x > 0
 *   min(a, b) -> a where a < b, else b (gradient follows the selected operand)
 *   x^p on the unit interval -> 0 for x <= 0, 1 for x >= 1, gradients only for 0 < x < 1.
 *
 * Layouts (C order, all contiguous):
 *   forcing  [T][B][3]          precip mm/d, temp degC, pet mm/d
 *   par      [B][NP][M]         static physical parameters, or
 *            [T][B][NP][M]      time-varying (dynamic = 1); NP = 12, or 13 with BETAET
 *   states   [B][5][M]          snowpack, meltwater, soil moisture, upper zone, lower zone (mm)
 *   q        [T][B]             unrouted runoff averaged over the M components (mm/d)
 *   ckpt     [B][NC][5][M]      states at the start of every HBV_CHUNK-th step (checkpoints),
 *                               NC = ceil(T / HBV_CHUNK)
 * Memory: the backward pass does not read a full tape of intermediates (T*B*M*7 values, tens of MB
 * that would make both passes memory-bound); it re-runs the forward pass chunk by chunk from the
 * checkpoints into a small per-thread tape [HBV_CHUNK][NS][M] that stays in cache (NS = 7, or 9
 * with BETAET: the 5 states, w = (SM/FC)^BETA, log(SM/FC), ET factor^BETAET and its log), then
 * sweeps that chunk backwards. The re-run uses the same code, so it reproduces the same bits.
 *
 * Speed: the inner loop over the M components is branch-free (selects only) and calls no
 * library function (x^p = exp(p log x) with the inline polynomial hbv_log/hbv_exp below,
 * accurate to a few ulp), so gcc vectorises it; per-site workers are compiled for AVX-512,
 * AVX2 and baseline x86-64 (target_clones, chosen at load time). Contraction into FMA is off
 * (-ffp-contract=off), so every clone gives the same bits.
 * Threads: sites are split into contiguous blocks over pthreads; each site is always computed
 * by the same code, so results do not depend on the thread count.
 *
 * The file includes itself twice to instantiate a double (_f64) and a float (_f32) version.
 */
#ifndef HBV_TEMPLATE_PASS
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#define NS_BASE 7
#define HBV_CHUNK 32

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HBV_NO_CLONES)
#define HBV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HBV_CLONES
#endif
#define HBV_INLINE static inline __attribute__((always_inline))

int hbv_abi_version(void) { return 4; }
int hbv_chunk(void) { return HBV_CHUNK; }
int hbv_has_openmp(void) { return 0; }  /* threads are plain pthreads (see hbv_parallel) */

/* ---- threads: sites [0, B) are cut into nthreads contiguous blocks, one pthread each (the
 * calling thread runs block 0). Plain pthreads rather than OpenMP: an OpenMP runtime of our
 * own would spin-wait next to PyTorch's, fighting over the cores between calls. */
typedef void (*hbv_job_fn)(void *ctx, int b0, int b1);
typedef struct { hbv_job_fn fn; void *ctx; int b0, b1; } hbv_job;

static void *hbv_thread_main(void *arg) {
    hbv_job *j = (hbv_job *)arg;
    j->fn(j->ctx, j->b0, j->b1);
    return NULL;
}

static void hbv_parallel(hbv_job_fn fn, void *ctx, int B, int nthreads) {
    if (nthreads > B) nthreads = B;
    if (nthreads > 64) nthreads = 64;
    if (nthreads <= 1) { fn(ctx, 0, B); return; }
    hbv_job jobs[64];
    pthread_t th[64];
    int started[64];
    for (int k = 0; k < nthreads; k++) {
        jobs[k].fn = fn; jobs[k].ctx = ctx;
        jobs[k].b0 = (int)((long)B * k / nthreads);
        jobs[k].b1 = (int)((long)B * (k + 1) / nthreads);
    }
    for (int k = 1; k < nthreads; k++)
        started[k] = pthread_create(&th[k], NULL, hbv_thread_main, &jobs[k]) == 0;
    fn(ctx, jobs[0].b0, jobs[0].b1);
    for (int k = 1; k < nthreads; k++) {
        if (started[k]) pthread_join(th[k], NULL);
        else fn(ctx, jobs[k].b0, jobs[k].b1);  /* could not start a thread: run its block here */
    }
}

/* ---- branch-free log / exp (double). log: x > 0 finite; exp: returns 0 below -708. */
HBV_INLINE double hbv_log_f64(double x) {
    const int sub = x < DBL_MIN;
    x = sub ? x * 0x1p54 : x;
    uint64_t u;
    memcpy(&u, &x, 8);
    uint64_t eb = (u >> 52) | 0x4330000000000000ULL;       /* 2^52 + biased exponent */
    double e;
    memcpy(&e, &eb, 8);
    e = e - 4503599627370496.0 - 1023.0 - (sub ? 54.0 : 0.0);
    uint64_t mb = (u & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL; /* mantissa in [1, 2) */
    double m;
    memcpy(&m, &mb, 8);
    const int big = m > 1.4142135623730951;
    m = big ? m * 0.5 : m;
    e = big ? e + 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0), z = s * s;
    double p = 1.0 / 23;
    p = p * z + 1.0 / 21; p = p * z + 1.0 / 19; p = p * z + 1.0 / 17; p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13; p = p * z + 1.0 / 11; p = p * z + 1.0 / 9;  p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;  p = p * z + 1.0 / 3;
    const double lm = 2.0 * s + 2.0 * s * z * p;           /* log(m), |s| <= 0.1716 */
    return e * 6.93147180369123816490e-01 + (lm + e * 1.90821492927058770002e-10);
}

HBV_INLINE double hbv_exp_f64(double y) {
    const int under = y < -708.0;
    y = under ? -708.0 : y;
    y = y > 708.0 ? 708.0 : y;
    const double shift = 6755399441055744.0;               /* 1.5 * 2^52: round to integer */
    const double t = y * 1.4426950408889634 + shift;
    const double n = t - shift;
    const double r = (y - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;                         /* 1/13! */
    p = p * r + 1.0 / 479001600.0; p = p * r + 1.0 / 39916800.0; p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;    p = p * r + 1.0 / 40320.0;    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;       p = p * r + 1.0 / 120.0;      p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;         p = p * r + 0.5;              p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t ut, us;
    memcpy(&ut, &t, 8);
    memcpy(&us, &shift, 8);
    const uint64_t sb = (ut - us + 1023ULL) << 52;          /* 2^n */
    double sc;
    memcpy(&sc, &sb, 8);
    return under ? 0.0 : p * sc;
}

/* ---- float versions. log: x > 0 finite; exp: returns 0 below -87. */
HBV_INLINE float hbv_log_f32(float x) {
    const int sub = x < FLT_MIN;
    x = sub ? x * 0x1p24f : x;
    uint32_t u;
    memcpy(&u, &x, 4);
    const int32_t eb = (int32_t)(u >> 23) - 127 - (sub ? 24 : 0);
    uint32_t mb = (u & 0x007FFFFFu) | 0x3F800000u;
    float m;
    memcpy(&m, &mb, 4);
    const int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    const float e = (float)(big ? eb + 1 : eb);
    const float s = (m - 1.0f) / (m + 1.0f), z = s * s;
    float p = 1.0f / 13;
    p = p * z + 1.0f / 11; p = p * z + 1.0f / 9; p = p * z + 1.0f / 7; p = p * z + 1.0f / 5; p = p * z + 1.0f / 3;
    const float lm = 2.0f * s + 2.0f * s * z * p;
    return e * 0.693145752f + (lm + e * 1.42860677e-06f);
}

HBV_INLINE float hbv_exp_f32(float y) {
    const int under = y < -87.0f;
    y = under ? -87.0f : y;
    y = y > 88.0f ? 88.0f : y;
    const float shift = 12582912.0f;                        /* 1.5 * 2^23 */
    const float t = y * 1.44269504f + shift;
    const float n = t - shift;
    const float r = (y - n * 0.693145752f) - n * 1.42860677e-06f;
    float p = 1.0f / 40320;
    p = p * r + 1.0f / 5040; p = p * r + 1.0f / 720; p = p * r + 1.0f / 120; p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;
    uint32_t ut, us;
    memcpy(&ut, &t, 4);
    memcpy(&us, &shift, 4);
    const uint32_t sb = (ut - us + 127u) << 23;
    float sc;
    memcpy(&sc, &sb, 4);
    return under ? 0.0f : p * sc;
}

#define HBV_TEMPLATE_PASS 1
#define REAL double
#define SFX(n) n##_f64
#define HLOG hbv_log_f64
#define HEXP hbv_exp_f64
#include "hbv.c"
#undef REAL
#undef SFX
#undef HLOG
#undef HEXP
#define REAL float
#define SFX(n) n##_f32
#define HLOG hbv_log_f32
#define HEXP hbv_exp_f32
#include "hbv.c"

#else /* ------------------------------------------------------------ template body */

#define ZERO ((REAL)0)
#define ONE ((REAL)1)

/* One day for the M components of one site: states updated in place; returns sum_m q. */
HBV_INLINE REAL SFX(fwd_step)(const int M, const REAL P, const REAL Tm, const REAL E, const REAL *restrict p,
                              REAL *restrict SP, REAL *restrict MW, REAL *restrict SM, REAL *restrict SUZ,
                              REAL *restrict SLZ, REAL *restrict sv, REAL *restrict qm, const int betaet,
                              const int do_save)
{
#pragma GCC ivdep /* components are independent: no dependence across m */
    for (int m = 0; m < M; m++) {
        const REAL BETA = p[0 * M + m], FC = p[1 * M + m], K0 = p[2 * M + m], K1 = p[3 * M + m],
                   K2 = p[4 * M + m], LP = p[5 * M + m], PERC = p[6 * M + m], UZL = p[7 * M + m],
                   TT = p[8 * M + m], CFMAX = p[9 * M + m], CFR = p[10 * M + m], CWH = p[11 * M + m];
        const REAL sp0 = SP[m], mw0 = MW[m], sm0 = SM[m], suz0 = SUZ[m], slz0 = SLZ[m];
        /* snow */
        const int is_rain = Tm >= TT;
        const REAL rain = is_rain ? P : ZERO;
        const REAL snowf = is_rain ? ZERO : P;
        REAL sp = sp0 + snowf;
        REAL pm = CFMAX * (Tm - TT);
        pm = pm > 0 ? pm : ZERO;
        const REAL melt = pm < sp ? pm : sp;
        sp = sp - melt;
        REAL mw = mw0 + melt;
        REAL pr = CFR * CFMAX * (TT - Tm);
        pr = pr > 0 ? pr : ZERO;
        const REAL refr = pr < mw ? pr : mw;
        sp = sp + refr;
        mw = mw - refr;
        const REAL ts = mw - CWH * sp;
        const REAL tosoil = ts > 0 ? ts : ZERO;
        mw = mw - tosoil;
        /* soil */
        const REAL x = sm0 / FC;
        const int x_in = (x > 0) & (x < 1);
        const REAL lnx = HLOG(x_in ? x : (REAL)0.5);
        const REAL wp = HEXP(BETA * lnx);
        const REAL w = x_in ? wp : (x >= 1 ? ONE : ZERO);
        const REAL inp = rain + tosoil;
        const REAL rech0 = inp * w;
        REAL sm = sm0 + inp - rech0;
        REAL ex = sm - FC;
        ex = ex > 0 ? ex : ZERO;
        sm = sm - ex;
        const REAL rech = rech0 + ex;
        REAL ef = sm / (LP * FC);
        ef = ef < 1 ? ef : ONE;
        if (betaet) {
            const int pos = ef > 0;
            const REAL lnef = HLOG(pos ? ef : (REAL)0.5);
            const REAL efp = pos ? HEXP(p[12 * M + m] * lnef) : ZERO;
            if (do_save) { sv[7 * M + m] = efp; sv[8 * M + m] = lnef; }
            ef = efp;
        }
        const REAL pe = E * ef;
        const REAL et = pe < sm ? pe : sm;
        sm = sm - et;
        /* response */
        REAL suz = suz0 + rech;
        const REAL perc = PERC < suz ? PERC : suz;
        suz = suz - perc;
        REAL slz = slz0 + perc;
        const REAL d0 = suz - UZL;
        const REAL q0 = K0 * (d0 > 0 ? d0 : ZERO);
        suz = suz - q0;
        const REAL q1 = K1 * suz;
        suz = suz - q1;
        const REAL q2 = K2 * slz;
        slz = slz - q2;
        qm[m] = q0 + q1 + q2;
        if (do_save) {
            sv[0 * M + m] = sp0; sv[1 * M + m] = mw0; sv[2 * M + m] = sm0;
            sv[3 * M + m] = suz0; sv[4 * M + m] = slz0; sv[5 * M + m] = w; sv[6 * M + m] = lnx;
        }
        SP[m] = sp; MW[m] = mw; SM[m] = sm; SUZ[m] = suz; SLZ[m] = slz;
    }
    REAL qsum = 0;  /* sequential sum over m (kept out of the vector loop: fixed order) */
    for (int m = 0; m < M; m++) qsum += qm[m];
    return qsum;
}

HBV_INLINE void SFX(fwd_site_impl)(int b, const REAL *restrict forcing, const REAL *restrict par, int dynamic,
                                   int T, int B, int M, const REAL *restrict state0, REAL *restrict state_out,
                                   REAL *restrict q, REAL *restrict ckpt, REAL *restrict buf,
                                   const int betaet, const int do_ckpt)
{
    const int NP = betaet ? 13 : 12;
    const int NC = (T + HBV_CHUNK - 1) / HBV_CHUNK;
    const REAL invM = ONE / (REAL)M;
    REAL *SP = buf, *MW = buf + M, *SM = buf + 2 * M, *SUZ = buf + 3 * M, *SLZ = buf + 4 * M, *qm = buf + 5 * M;
    memcpy(buf, state0 + (size_t)b * 5 * M, sizeof(REAL) * 5 * (size_t)M);
    for (int t = 0; t < T; t++) {
        if (do_ckpt && t % HBV_CHUNK == 0)
            memcpy(ckpt + ((size_t)b * NC + t / HBV_CHUNK) * 5 * M, buf, sizeof(REAL) * 5 * (size_t)M);
        const REAL *f = forcing + ((size_t)t * B + b) * 3;
        const REAL *p = dynamic ? par + ((size_t)t * B + b) * NP * M : par + (size_t)b * NP * M;
        const REAL qs = SFX(fwd_step)(M, f[0], f[1], f[2], p, SP, MW, SM, SUZ, SLZ, NULL, qm, betaet, 0);
        q[(size_t)t * B + b] = qs * invM;
    }
    if (state_out) memcpy(state_out + (size_t)b * 5 * M, buf, sizeof(REAL) * 5 * (size_t)M);
}

HBV_CLONES void SFX(fwd_site)(int b, const REAL *restrict forcing, const REAL *restrict par, int dynamic,
                              int T, int B, int M, int betaet, const REAL *restrict state0, REAL *restrict state_out,
                              REAL *restrict q, REAL *restrict ckpt, REAL *restrict buf)
{
    REAL *save = ckpt;
    if (betaet) {
        if (save) SFX(fwd_site_impl)(b, forcing, par, dynamic, T, B, M, state0, state_out, q, save, buf, 1, 1);
        else SFX(fwd_site_impl)(b, forcing, par, dynamic, T, B, M, state0, state_out, q, save, buf, 1, 0);
    } else {
        if (save) SFX(fwd_site_impl)(b, forcing, par, dynamic, T, B, M, state0, state_out, q, save, buf, 0, 1);
        else SFX(fwd_site_impl)(b, forcing, par, dynamic, T, B, M, state0, state_out, q, save, buf, 0, 0);
    }
}

typedef struct {
    const REAL *forcing, *par, *state0;
    REAL *state_out, *q, *ckpt;
    int dynamic, T, B, M, betaet;
} SFX(fwd_ctx);

static void SFX(fwd_job)(void *vctx, int b0, int b1) {
    const SFX(fwd_ctx) *c = (const SFX(fwd_ctx) *)vctx;
    REAL *buf = (REAL *)malloc(sizeof(REAL) * 6 * (size_t)c->M);
    for (int b = b0; b < b1; b++)
        SFX(fwd_site)(b, c->forcing, c->par, c->dynamic, c->T, c->B, c->M, c->betaet, c->state0, c->state_out,
                      c->q, c->ckpt, buf);
    free(buf);
}

/* Forward over T steps for all sites. ckpt may be NULL (forward only), state_out too. */
void SFX(hbv_forward)(const REAL *forcing, const REAL *par, int dynamic, int T, int B, int M, int betaet,
                      const REAL *state0, REAL *state_out, REAL *q, REAL *ckpt, int nthreads)
{
    SFX(fwd_ctx) c = {forcing, par, state0, state_out, q, ckpt, dynamic, T, B, M, betaet};
    hbv_parallel(SFX(fwd_job), &c, B, nthreads);
}

/* Reverse one day for the M components of one site; adjoint states updated in place. */
HBV_INLINE void SFX(bwd_step)(const int M, const REAL P, const REAL Tm, const REAL E, const REAL *restrict p,
                              REAL *restrict g, const REAL *restrict sv, const REAL gQ, REAL *restrict aSP,
                              REAL *restrict aMW, REAL *restrict aSM, REAL *restrict aSUZ, REAL *restrict aSLZ,
                              const int betaet)
{
#pragma GCC ivdep /* components are independent: no dependence across m */
    for (int m = 0; m < M; m++) {
        const REAL BETA = p[0 * M + m], FC = p[1 * M + m], K0 = p[2 * M + m], K1 = p[3 * M + m],
                   K2 = p[4 * M + m], LP = p[5 * M + m], PERC = p[6 * M + m], UZL = p[7 * M + m],
                   TT = p[8 * M + m], CFMAX = p[9 * M + m], CFR = p[10 * M + m], CWH = p[11 * M + m];
        const REAL sp0 = sv[0 * M + m], mw0 = sv[1 * M + m], sm0 = sv[2 * M + m],
                   suz0 = sv[3 * M + m], slz0 = sv[4 * M + m], w = sv[5 * M + m], lnx = sv[6 * M + m];
        /* ---- recompute the forward step */
        const int is_rain = Tm >= TT;
        const REAL rain = is_rain ? P : ZERO;
        const REAL snowf = is_rain ? ZERO : P;
        const REAL sp1 = sp0 + snowf;
        const REAL pm0 = CFMAX * (Tm - TT);
        const REAL pm = pm0 > 0 ? pm0 : ZERO;
        const int melt_pm = pm < sp1;
        const REAL melt = melt_pm ? pm : sp1;
        const REAL sp2 = sp1 - melt;
        const REAL mw1 = mw0 + melt;
        const REAL dT = TT - Tm;
        const REAL pr0 = CFR * CFMAX * dT;
        const REAL pr = pr0 > 0 ? pr0 : ZERO;
        const int refr_pr = pr < mw1;
        const REAL refr = refr_pr ? pr : mw1;
        const REAL sp3 = sp2 + refr;
        const REAL mw2 = mw1 - refr;
        const REAL ts0 = mw2 - CWH * sp3;
        const REAL tosoil = ts0 > 0 ? ts0 : ZERO;
        const REAL x = sm0 / FC;
        const int x_in = (x > 0) & (x < 1);
        const REAL inp = rain + tosoil;
        const REAL rech0 = inp * w;
        const REAL sm1 = sm0 + inp - rech0;
        const REAL ex0 = sm1 - FC;
        const REAL ex = ex0 > 0 ? ex0 : ZERO;
        const REAL sm2 = sm1 - ex;
        const REAL rech = rech0 + ex;
        const REAL lpfc = LP * FC;
        const REAL r = sm2 / lpfc;
        const int r_lt1 = r < 1;
        const REAL efb = r_lt1 ? r : ONE;
        const REAL ef = betaet ? sv[7 * M + m] : efb;
        const REAL pe = E * ef;
        const int et_pe = pe < sm2;
        const REAL suz1 = suz0 + rech;
        const int perc_p = PERC < suz1;
        const REAL perc = perc_p ? PERC : suz1;
        const REAL suz2 = suz1 - perc;
        const REAL slz1 = slz0 + perc;
        const REAL d0 = suz2 - UZL;
        const REAL r0 = d0 > 0 ? d0 : ZERO;
        const REAL q0 = K0 * r0;
        const REAL suz3 = suz2 - q0;
        /* ---- reverse: lower zone */
        REAL a_q0 = gQ, a_q1 = gQ, a_q2 = gQ;
        const REAL aslz = aSLZ[m], asuz = aSUZ[m], asm_ = aSM[m], amw = aMW[m], asp = aSP[m];
        a_q2 -= aslz;
        g[4 * M + m] += a_q2 * slz1;                               /* K2 */
        const REAL a_slz1 = aslz + a_q2 * K2;
        /* upper zone */
        a_q1 -= asuz;
        g[3 * M + m] += a_q1 * suz3;                               /* K1 */
        const REAL a_suz3 = asuz + a_q1 * K1;
        a_q0 -= a_suz3;
        g[2 * M + m] += a_q0 * r0;                                 /* K0 */
        const REAL a_d0 = d0 > 0 ? a_q0 * K0 : ZERO;
        const REAL a_suz2 = a_suz3 + a_d0;
        g[7 * M + m] -= a_d0;                                      /* UZL */
        const REAL a_perc = a_slz1 - a_suz2;
        g[6 * M + m] += perc_p ? a_perc : ZERO;                    /* PERC */
        const REAL a_suz1 = perc_p ? a_suz2 : a_suz2 + a_perc;
        const REAL a_rech = a_suz1;
        /* soil: ET */
        const REAL a_et = -asm_;
        const REAL a_pe = et_pe ? a_et : ZERO;
        REAL a_sm2 = et_pe ? asm_ : asm_ + a_et;
        REAL a_ef = a_pe * E;
        if (betaet) {
            const int pos = efb > 0;
            const REAL lnef = sv[8 * M + m];
            const REAL BE = p[12 * M + m];
            g[12 * M + m] += pos ? a_ef * ef * lnef : ZERO;        /* BETAET */
            a_ef = pos ? a_ef * BE * ef / efb : ZERO;
        }
        const REAL a_r = r_lt1 ? a_ef : ZERO;
        a_sm2 += a_r / lpfc;
        const REAL a_lpfc = -a_r * r / lpfc;
        g[5 * M + m] += a_lpfc * FC;                               /* LP */
        REAL a_FC = a_lpfc * LP;
        /* soil: excess and recharge */
        const REAL a_ex = a_rech - a_sm2;
        const int exp_ = ex0 > 0;
        const REAL a_sm1 = exp_ ? a_sm2 + a_ex : a_sm2;
        a_FC = exp_ ? a_FC - a_ex : a_FC;
        const REAL a_rech0 = a_rech - a_sm1;
        const REAL a_inp = a_sm1 + a_rech0 * w;
        const REAL a_w = a_rech0 * inp;
        g[0 * M + m] += x_in ? a_w * w * lnx : ZERO;               /* BETA */
        const REAL a_x = x_in ? a_w * BETA * w / x : ZERO;
        const REAL a_sm0 = x_in ? a_sm1 + a_x / FC : a_sm1;
        a_FC = x_in ? a_FC - a_x * x / FC : a_FC;
        g[1 * M + m] += a_FC;                                      /* FC */
        /* snow (rain has no parameter dependence) */
        const REAL a_tosoil = a_inp - amw;
        const REAL a_ts0 = ts0 > 0 ? a_tosoil : ZERO;
        const REAL a_mw2 = amw + a_ts0;
        g[11 * M + m] -= a_ts0 * sp3;                              /* CWH */
        const REAL a_sp3 = asp - a_ts0 * CWH;
        const REAL a_refr = a_sp3 - a_mw2;
        const REAL a_sp2 = a_sp3;
        const REAL a_pr = refr_pr ? a_refr : ZERO;
        const REAL a_mw1 = refr_pr ? a_mw2 : a_mw2 + a_refr;
        const REAL a_pr0 = pr0 > 0 ? a_pr : ZERO;
        g[10 * M + m] += a_pr0 * CFMAX * dT;                       /* CFR */
        REAL a_CFMAX = a_pr0 * CFR * dT;
        REAL a_TT = a_pr0 * CFR * CFMAX;
        const REAL a_melt = a_mw1 - a_sp2;
        const REAL a_pm = melt_pm ? a_melt : ZERO;
        const REAL a_sp1 = melt_pm ? a_sp2 : a_sp2 + a_melt;
        const REAL a_pm0 = pm0 > 0 ? a_pm : ZERO;
        a_CFMAX += a_pm0 * (Tm - TT);
        a_TT -= a_pm0 * CFMAX;
        g[9 * M + m] += a_CFMAX;
        g[8 * M + m] += a_TT;
        aSP[m] = a_sp1; aMW[m] = a_mw1; aSM[m] = a_sm0; aSUZ[m] = a_suz1; aSLZ[m] = a_slz1;
    }
}

HBV_INLINE void SFX(bwd_site_impl)(int b, const REAL *restrict forcing, const REAL *restrict par, int dynamic,
                                   int T, int B, int M, const REAL *restrict ckpt, const REAL *restrict gq,
                                   const REAL *restrict gstate_T, REAL *restrict gpar, REAL *restrict gstate0,
                                   REAL *restrict abuf, const int betaet)
{
    const int NP = betaet ? 13 : 12;
    const int NS = NS_BASE + (betaet ? 2 : 0);
    const int NC = (T + HBV_CHUNK - 1) / HBV_CHUNK;
    const REAL invM = ONE / (REAL)M;
    REAL *aSP = abuf, *aMW = abuf + M, *aSM = abuf + 2 * M, *aSUZ = abuf + 3 * M, *aSLZ = abuf + 4 * M;
    REAL *st = abuf + 5 * M, *qm = abuf + 10 * M, *tape = abuf + 11 * M;  /* tape: [HBV_CHUNK][NS][M] */
    if (gstate_T) memcpy(abuf, gstate_T + (size_t)b * 5 * M, sizeof(REAL) * 5 * (size_t)M);
    else memset(abuf, 0, sizeof(REAL) * 5 * (size_t)M);
    if (!dynamic) memset(gpar + (size_t)b * NP * M, 0, sizeof(REAL) * NP * (size_t)M);
    for (int c = NC - 1; c >= 0; c--) {
        const int t0 = c * HBV_CHUNK, t1 = t0 + HBV_CHUNK < T ? t0 + HBV_CHUNK : T;
        memcpy(st, ckpt + ((size_t)b * NC + c) * 5 * M, sizeof(REAL) * 5 * (size_t)M);
        for (int t = t0; t < t1; t++) {  /* re-run the chunk, recording the tape */
            const REAL *f = forcing + ((size_t)t * B + b) * 3;
            const REAL *p = dynamic ? par + ((size_t)t * B + b) * NP * M : par + (size_t)b * NP * M;
            (void)SFX(fwd_step)(M, f[0], f[1], f[2], p, st, st + M, st + 2 * M, st + 3 * M, st + 4 * M,
                                tape + (size_t)(t - t0) * NS * M, qm, betaet, 1);
        }
        for (int t = t1 - 1; t >= t0; t--) {
            const REAL *f = forcing + ((size_t)t * B + b) * 3;
            const REAL *p = dynamic ? par + ((size_t)t * B + b) * NP * M : par + (size_t)b * NP * M;
            REAL *g = dynamic ? gpar + ((size_t)t * B + b) * NP * M : gpar + (size_t)b * NP * M;
            if (dynamic) memset(g, 0, sizeof(REAL) * NP * (size_t)M);
            SFX(bwd_step)(M, f[0], f[1], f[2], p, g, tape + (size_t)(t - t0) * NS * M, gq[(size_t)t * B + b] * invM,
                          aSP, aMW, aSM, aSUZ, aSLZ, betaet);
        }
    }
    if (gstate0) memcpy(gstate0 + (size_t)b * 5 * M, abuf, sizeof(REAL) * 5 * (size_t)M);
}

HBV_CLONES void SFX(bwd_site)(int b, const REAL *restrict forcing, const REAL *restrict par, int dynamic,
                              int T, int B, int M, int betaet, const REAL *restrict ckpt, const REAL *restrict gq,
                              const REAL *restrict gstate_T, REAL *restrict gpar, REAL *restrict gstate0,
                              REAL *restrict abuf)
{
    if (betaet) SFX(bwd_site_impl)(b, forcing, par, dynamic, T, B, M, ckpt, gq, gstate_T, gpar, gstate0, abuf, 1);
    else SFX(bwd_site_impl)(b, forcing, par, dynamic, T, B, M, ckpt, gq, gstate_T, gpar, gstate0, abuf, 0);
}

typedef struct {
    const REAL *forcing, *par, *ckpt, *gq, *gstate_T;
    REAL *gpar, *gstate0;
    int dynamic, T, B, M, betaet;
} SFX(bwd_ctx);

static void SFX(bwd_job)(void *vctx, int b0, int b1) {
    const SFX(bwd_ctx) *c = (const SFX(bwd_ctx) *)vctx;
    const int NS = NS_BASE + (c->betaet ? 2 : 0);
    REAL *abuf = (REAL *)malloc(sizeof(REAL) * (11 + (size_t)HBV_CHUNK * NS) * (size_t)c->M);
    for (int b = b0; b < b1; b++)
        SFX(bwd_site)(b, c->forcing, c->par, c->dynamic, c->T, c->B, c->M, c->betaet, c->ckpt, c->gq, c->gstate_T,
                      c->gpar, c->gstate0, abuf);
    free(abuf);
}

/* Adjoint pass from the checkpoints of hbv_forward. gq [T][B]: dL/dq (q = nmul average). gstate_T
 * [B][5][M] (may be NULL): dL/d(final states). Writes gpar (shape of par; overwritten) and gstate0
 * [B][5][M] (may be NULL). */
void SFX(hbv_backward)(const REAL *forcing, const REAL *par, int dynamic, int T, int B, int M, int betaet,
                       const REAL *ckpt, const REAL *gq, const REAL *gstate_T, REAL *gpar, REAL *gstate0,
                       int nthreads)
{
    SFX(bwd_ctx) c = {forcing, par, ckpt, gq, gstate_T, gpar, gstate0, dynamic, T, B, M, betaet};
    hbv_parallel(SFX(bwd_job), &c, B, nthreads);
}
#undef ZERO
#undef ONE
#endif
