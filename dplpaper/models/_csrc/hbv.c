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
 *   dpar     [T][B][ND][M]      mixed mode (hbv_forward_dyn / hbv_backward_dyn): par is static and
 *                               the ND rows drow[0..ND) of it are replaced every day by dpar
 *                               (e.g. BETA and BETAET time-varying, the other rows static), so
 *                               the static rows are never copied T times and their gradient is
 *                               summed inside the kernel
 *   states   [B][5][M]          snowpack, meltwater, soil moisture, upper zone, lower zone (mm)
 *   q        [T][B]             unrouted runoff averaged over the M components (mm/d)
 *   ckpt     [B][NC][5][M]      states at the start of every HBV_CHUNK-th step (checkpoints),
 *                               NC = ceil(T / HBV_CHUNK)
 * Lanes: the unit of computation is a lane = one component of one site. Sites are taken in blocks
 * of G = max(1, HBV_LANES / M) consecutive sites (G*M lanes, padded with copies of the last lane to
 * a multiple of HBV_VL); a block's parameters [NP][lanes] and states [5][lanes] are gathered into
 * small lane-major buffers, each day's forcing is broadcast to the lanes of its site, and the
 * step loop runs over all lanes of the block. So nmul = 1 vectorises across sites exactly as
 * nmul = 16 does across components (the previous layout looped over components only and ran
 * scalar at nmul = 1). Each lane's arithmetic is the same whatever block, vector width or thread
 * computes it, and the nmul average is a sequential sum over m, so results do not depend on the
 * blocking or the thread count.
 * Memory: the backward pass does not read a full tape of intermediates (T*B*M*7 values, tens of MB
 * that would make both passes memory-bound); it re-runs the forward pass chunk by chunk from the
 * checkpoints into a small per-thread tape [HBV_CHUNK][NS][lanes] that stays in cache (NS = 7, or 9
 * with BETAET: the 5 states, w = (SM/FC)^BETA, log(SM/FC), ET factor^BETAET and its log), then
 * sweeps that chunk backwards. The re-run uses the same code, so it reproduces the same bits.
 *
 * Speed: the inner loop over lanes is branch-free (selects only) and calls no library function
 * (x^p = exp(p log x) with the inline polynomial hbv_log/hbv_exp below, accurate to a few ulp), so
 * gcc vectorises it; per-block workers are compiled for AVX-512, AVX2 and baseline x86-64
 * (target_clones, chosen at load time). Contraction into FMA is off (-ffp-contract=off), so every
 * clone gives the same bits.
 * Threads: sites are split into contiguous ranges, one per thread (blocks inside a range): with
 * -DHBV_OPENMP the threads of the process's OpenMP runtime (PyTorch's libgomp), else pthreads.
 * Also here: the gamma-UH routing convolution and its adjoint (vectorised over sites), and a
 * one-pass forcing validity check.
 *
 * The file includes itself twice to instantiate a double (_f64) and a float (_f32) version.
 */
#ifndef HBV_TEMPLATE_PASS
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L
#endif
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#ifdef HBV_OPENMP
#include <omp.h>
#endif

#define NS_BASE 7
#define HBV_CHUNK 32
/* lanes (site x component pairs) computed together: a block holds max(1, HBV_LANES / M) sites,
 * padded to a multiple of HBV_VL lanes (one AVX-512 register of floats) */
#ifndef HBV_LANES
#define HBV_LANES 64
#endif
#define HBV_VL 16

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(HBV_NO_CLONES)
#define HBV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HBV_CLONES
#endif
#define HBV_INLINE static inline __attribute__((always_inline))

int hbv_abi_version(void) { return 6; }
int hbv_lanes(void) { return HBV_LANES; }
static int hbv_sites_per_block(int M) { return M >= HBV_LANES ? 1 : HBV_LANES / M; }
int hbv_chunk(void) { return HBV_CHUNK; }

/* mixed mode: ND distinct time-varying rows in [0, NP) */
static int hbv_rows_ok(int ND, const int *drow, int NP) {
    if (ND < 1 || ND > NP || !drow) return 0;
    for (int j = 0; j < ND; j++) {
        if (drow[j] < 0 || drow[j] >= NP) return 0;
        for (int i = 0; i < j; i++)
            if (drow[i] == drow[j]) return 0;
    }
    return 1;
}

#ifdef HBV_OPENMP
int hbv_has_openmp(void) { return 1; }  /* threads: the process's OpenMP runtime (see hbv_parallel) */
#else
int hbv_has_openmp(void) { return 0; }  /* threads: plain pthreads (see hbv_parallel) */
#endif

/* ---- threads: sites [0, B) are cut into nthreads contiguous ranges, one thread each (the
 * calling thread runs range 0). With HBV_OPENMP (set by hbv_fused.py only when PyTorch's own
 * libgomp is in the process, so this library shares it): an OpenMP parallel region; otherwise
 * pthreads (an OpenMP runtime of our own would spin-wait next to PyTorch's). */
typedef void (*hbv_job_fn)(void *ctx, int b0, int b1);
typedef struct { hbv_job_fn fn; void *ctx; int b0, b1; } hbv_job;

#ifndef HBV_OPENMP
static void *hbv_thread_main(void *arg) {
    hbv_job *j = (hbv_job *)arg;
    j->fn(j->ctx, j->b0, j->b1);
    return NULL;
}
#endif

static void hbv_parallel(hbv_job_fn fn, void *ctx, int B, int nthreads) {
    if (nthreads > B) nthreads = B;
    if (nthreads > 64) nthreads = 64;
    if (nthreads <= 1) { fn(ctx, 0, B); return; }
#ifdef HBV_OPENMP
    /* the OpenMP runtime PyTorch already runs (same libgomp.so.1, loaded once per process): its
     * workers, often still spinning after the previous tensor operation, take the blocks at once */
#pragma omp parallel num_threads(nthreads)
    {
        const int k = omp_get_thread_num(), n = omp_get_num_threads();
        fn(ctx, (int)((long)B * k / n), (int)((long)B * (k + 1) / n));
    }
#else
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
#endif
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
#define HMAX DBL_MAX
#include "hbv.c"
#undef REAL
#undef SFX
#undef HLOG
#undef HEXP
#undef HMAX
#define REAL float
#define SFX(n) n##_f32
#define HLOG hbv_log_f32
#define HEXP hbv_exp_f32
#define HMAX FLT_MAX
#include "hbv.c"

#else /* ------------------------------------------------------------ template body */

#define ZERO ((REAL)0)
#define ONE ((REAL)1)

/* One day for NL lanes (lane = one component of one site): forcing F [3][NL], parameters
 * p [NP][NL], states S [5][NL] updated in place, unrouted runoff of each lane into qm [NL];
 * with do_save, the tape row sv [NS][NL] of this day. */
HBV_INLINE void SFX(fwd_lanes)(const int NL, const REAL *restrict F, const REAL *restrict p, REAL *restrict S,
                               REAL *restrict sv, REAL *restrict qm, const int betaet, const int do_save)
{
    const REAL *restrict Pa = F, *restrict Ta = F + NL, *restrict Ea = F + 2 * NL;
    REAL *restrict SP = S, *restrict MW = S + NL, *restrict SM = S + 2 * NL, *restrict SUZ = S + 3 * NL,
         *restrict SLZ = S + 4 * NL;
#pragma GCC ivdep /* lanes are independent: no dependence across m */
    for (int m = 0; m < NL; m++) {
        const REAL P = Pa[m], Tm = Ta[m], E = Ea[m];
        const REAL BETA = p[0 * NL + m], FC = p[1 * NL + m], K0 = p[2 * NL + m], K1 = p[3 * NL + m],
                   K2 = p[4 * NL + m], LP = p[5 * NL + m], PERC = p[6 * NL + m], UZL = p[7 * NL + m],
                   TT = p[8 * NL + m], CFMAX = p[9 * NL + m], CFR = p[10 * NL + m], CWH = p[11 * NL + m];
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
            const REAL efp = pos ? HEXP(p[12 * NL + m] * lnef) : ZERO;
            if (do_save) { sv[7 * NL + m] = efp; sv[8 * NL + m] = lnef; }
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
            sv[0 * NL + m] = sp0; sv[1 * NL + m] = mw0; sv[2 * NL + m] = sm0;
            sv[3 * NL + m] = suz0; sv[4 * NL + m] = slz0; sv[5 * NL + m] = w; sv[6 * NL + m] = lnx;
        }
        SP[m] = sp; MW[m] = mw; SM[m] = sm; SUZ[m] = suz; SLZ[m] = slz;
    }
}

/* Reverse one day for NL lanes: adjoint states A [5][NL] updated in place, parameter adjoints added
 * into g [NP][NL]; gQ [NL] = dL/d(lane runoff); sv the tape row of this day. */
HBV_INLINE void SFX(bwd_lanes)(const int NL, const REAL *restrict F, const REAL *restrict p, REAL *restrict g,
                               const REAL *restrict sv, const REAL *restrict gQa, REAL *restrict A, const int betaet)
{
    const REAL *restrict Pa = F, *restrict Ta = F + NL, *restrict Ea = F + 2 * NL;
    REAL *restrict aSP = A, *restrict aMW = A + NL, *restrict aSM = A + 2 * NL, *restrict aSUZ = A + 3 * NL,
         *restrict aSLZ = A + 4 * NL;
#pragma GCC ivdep /* lanes are independent: no dependence across m */
    for (int m = 0; m < NL; m++) {
        const REAL P = Pa[m], Tm = Ta[m], E = Ea[m], gQ = gQa[m];
        const REAL BETA = p[0 * NL + m], FC = p[1 * NL + m], K0 = p[2 * NL + m], K1 = p[3 * NL + m],
                   K2 = p[4 * NL + m], LP = p[5 * NL + m], PERC = p[6 * NL + m], UZL = p[7 * NL + m],
                   TT = p[8 * NL + m], CFMAX = p[9 * NL + m], CFR = p[10 * NL + m], CWH = p[11 * NL + m];
        const REAL sp0 = sv[0 * NL + m], mw0 = sv[1 * NL + m], sm0 = sv[2 * NL + m],
                   suz0 = sv[3 * NL + m], slz0 = sv[4 * NL + m], w = sv[5 * NL + m], lnx = sv[6 * NL + m];
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
        const REAL ef = betaet ? sv[7 * NL + m] : efb;
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
        g[4 * NL + m] += a_q2 * slz1;                              /* K2 */
        const REAL a_slz1 = aslz + a_q2 * K2;
        /* upper zone */
        a_q1 -= asuz;
        g[3 * NL + m] += a_q1 * suz3;                              /* K1 */
        const REAL a_suz3 = asuz + a_q1 * K1;
        a_q0 -= a_suz3;
        g[2 * NL + m] += a_q0 * r0;                                /* K0 */
        const REAL a_d0 = d0 > 0 ? a_q0 * K0 : ZERO;
        const REAL a_suz2 = a_suz3 + a_d0;
        g[7 * NL + m] -= a_d0;                                     /* UZL */
        const REAL a_perc = a_slz1 - a_suz2;
        g[6 * NL + m] += perc_p ? a_perc : ZERO;                   /* PERC */
        const REAL a_suz1 = perc_p ? a_suz2 : a_suz2 + a_perc;
        const REAL a_rech = a_suz1;
        /* soil: ET */
        const REAL a_et = -asm_;
        const REAL a_pe = et_pe ? a_et : ZERO;
        REAL a_sm2 = et_pe ? asm_ : asm_ + a_et;
        REAL a_ef = a_pe * E;
        if (betaet) {
            const int pos = efb > 0;
            const REAL lnef = sv[8 * NL + m];
            const REAL BE = p[12 * NL + m];
            g[12 * NL + m] += pos ? a_ef * ef * lnef : ZERO;       /* BETAET */
            a_ef = pos ? a_ef * BE * ef / efb : ZERO;
        }
        const REAL a_r = r_lt1 ? a_ef : ZERO;
        a_sm2 += a_r / lpfc;
        const REAL a_lpfc = -a_r * r / lpfc;
        g[5 * NL + m] += a_lpfc * FC;                              /* LP */
        REAL a_FC = a_lpfc * LP;
        /* soil: excess and recharge */
        const REAL a_ex = a_rech - a_sm2;
        const int exp_ = ex0 > 0;
        const REAL a_sm1 = exp_ ? a_sm2 + a_ex : a_sm2;
        a_FC = exp_ ? a_FC - a_ex : a_FC;
        const REAL a_rech0 = a_rech - a_sm1;
        const REAL a_inp = a_sm1 + a_rech0 * w;
        const REAL a_w = a_rech0 * inp;
        g[0 * NL + m] += x_in ? a_w * w * lnx : ZERO;              /* BETA */
        const REAL a_x = x_in ? a_w * BETA * w / x : ZERO;
        const REAL a_sm0 = x_in ? a_sm1 + a_x / FC : a_sm1;
        a_FC = x_in ? a_FC - a_x * x / FC : a_FC;
        g[1 * NL + m] += a_FC;                                     /* FC */
        /* snow (rain has no parameter dependence) */
        const REAL a_tosoil = a_inp - amw;
        const REAL a_ts0 = ts0 > 0 ? a_tosoil : ZERO;
        const REAL a_mw2 = amw + a_ts0;
        g[11 * NL + m] -= a_ts0 * sp3;                             /* CWH */
        const REAL a_sp3 = asp - a_ts0 * CWH;
        const REAL a_refr = a_sp3 - a_mw2;
        const REAL a_sp2 = a_sp3;
        const REAL a_pr = refr_pr ? a_refr : ZERO;
        const REAL a_mw1 = refr_pr ? a_mw2 : a_mw2 + a_refr;
        const REAL a_pr0 = pr0 > 0 ? a_pr : ZERO;
        g[10 * NL + m] += a_pr0 * CFMAX * dT;                      /* CFR */
        REAL a_CFMAX = a_pr0 * CFR * dT;
        REAL a_TT = a_pr0 * CFR * CFMAX;
        const REAL a_melt = a_mw1 - a_sp2;
        const REAL a_pm = melt_pm ? a_melt : ZERO;
        const REAL a_sp1 = melt_pm ? a_sp2 : a_sp2 + a_melt;
        const REAL a_pm0 = pm0 > 0 ? a_pm : ZERO;
        a_CFMAX += a_pm0 * (Tm - TT);
        a_TT -= a_pm0 * CFMAX;
        g[9 * NL + m] += a_CFMAX;
        g[8 * NL + m] += a_TT;
        aSP[m] = a_sp1; aMW[m] = a_mw1; aSM[m] = a_sm0; aSUZ[m] = a_suz1; aSLZ[m] = a_slz1;
    }
}

/* ---- a block: G consecutive sites [b0, b0 + G) x M components = G*M lanes, padded to NL (a multiple
 * of HBV_VL) with copies of the block's last lane. Lane l holds component lm[l] of site ls[l]. */
typedef struct {
    const REAL *forcing, *par, *state0, *ckpt, *gq, *gstate_T;
    REAL *state_out, *q, *ckpt_out, *gpar, *gstate0;
    int dynamic, T, B, M, betaet, G;
    volatile int err;
    const int *fidx;  /* forcing column of each site (NULL: site b uses column b) */
    int Bf;           /* number of forcing columns */
    const REAL *uh;   /* [B][L] unit hydrographs: route inside the loop (forward only, M == 1), or NULL */
    int L;  /* set by a worker that could not allocate its buffers */
    const REAL *dpar; /* mixed mode: [T][B][ND][M] time-varying rows drow[] (NULL: not mixed) */
    REAL *gdpar;      /* mixed mode backward: dL/d dpar [T][B][ND][M] */
    int ND;
    const int *drow;
} SFX(ctx);

typedef struct {
    int *ls, *lm;
    REAL *pb, *S, *fb, *qm, *tape, *A, *gb, *gqb, *ring, *uhb;
} SFX(work);

/* parameters of day t (dynamic) or the static ones into pb [NP][NL] */
HBV_INLINE void SFX(gather_par)(const SFX(ctx) *c, const SFX(work) *w, int NL, int NP, int t) {
    const size_t base = c->dynamic ? (size_t)t * c->B * NP * c->M : 0;
    for (int k = 0; k < NP; k++)
        for (int l = 0; l < NL; l++)
            w->pb[k * NL + l] = c->par[base + ((size_t)w->ls[l] * NP + k) * c->M + w->lm[l]];
}

/* mixed mode: the time-varying rows of day t into their rows of pb */
HBV_INLINE void SFX(gather_dyn)(const SFX(ctx) *c, const SFX(work) *w, int NL, int t) {
    const int ND = c->ND, M = c->M;
    const size_t base = (size_t)t * c->B * ND * M;
    for (int j = 0; j < ND; j++) {
        REAL *restrict dst = w->pb + (size_t)c->drow[j] * NL;
        for (int l = 0; l < NL; l++) dst[l] = c->dpar[base + ((size_t)w->ls[l] * ND + j) * M + w->lm[l]];
    }
}

/* mixed mode backward: the gradient of day t's time-varying rows out of gb (then zeroed there) */
HBV_INLINE void SFX(scatter_gdyn)(const SFX(ctx) *c, const SFX(work) *w, int NL, int NV, int t) {
    const int ND = c->ND, M = c->M;
    const size_t base = (size_t)t * c->B * ND * M;
    for (int j = 0; j < ND; j++) {
        REAL *restrict g = w->gb + (size_t)c->drow[j] * NL;
        for (int l = 0; l < NV; l++) c->gdpar[base + ((size_t)w->ls[l] * ND + j) * M + w->lm[l]] = g[l];
        for (int l = 0; l < NL; l++) g[l] = ZERO;
    }
}

/* forcing of days [t0, t1) into fb [t - t0][3][NL] */
HBV_INLINE void SFX(gather_forcing)(const SFX(ctx) *c, const SFX(work) *w, int NL, int t0, int t1) {
    for (int t = t0; t < t1; t++) {
        REAL *f = w->fb + (size_t)(t - t0) * 3 * NL;
        const REAL *src = c->forcing + (size_t)t * c->Bf * 3;
        for (int l = 0; l < NL; l++) {
            const REAL *s = src + (size_t)(c->fidx ? c->fidx[w->ls[l]] : w->ls[l]) * 3;
            f[l] = s[0]; f[NL + l] = s[1]; f[2 * NL + l] = s[2];
        }
    }
}

/* states [B][5][M] (or a checkpoint slice) <-> S [5][NL] */
HBV_INLINE void SFX(load_states)(const SFX(work) *w, const REAL *src, size_t site_stride, int M, int NL) {
    for (int s = 0; s < 5; s++)
        for (int l = 0; l < NL; l++) w->S[s * NL + l] = src[(size_t)w->ls[l] * site_stride + (size_t)s * M + w->lm[l]];
}

HBV_INLINE void SFX(store_lanes)(const SFX(work) *w, const REAL *v, int rows, REAL *dst, size_t site_stride, int M,
                                 int NL, int NV) {
    for (int s = 0; s < rows; s++)
        for (int l = 0; l < NV; l++) dst[(size_t)w->ls[l] * site_stride + (size_t)s * M + w->lm[l]] = v[s * NL + l];
}

/* nmul average of the lane runoff into q[t][b0 .. b0 + G) (sequential sum over m: fixed order) */
HBV_INLINE void SFX(write_q)(REAL *restrict qrow, const REAL *restrict qm, int G, int M, REAL invM) {
    if (M == 1) {
        for (int g = 0; g < G; g++) qrow[g] = (ZERO + qm[g]) * invM;
    } else {
        for (int g = 0; g < G; g++) {
            REAL qs = 0;
            for (int m = 0; m < M; m++) qs += qm[g * M + m];
            qrow[g] = qs * invM;
        }
    }
}

HBV_INLINE void SFX(fwd_block_impl)(const SFX(ctx) *c, const SFX(work) *w, int b0, int G, int NL, const int betaet,
                                    const int do_ckpt) {
    const int T = c->T, B = c->B, M = c->M, NP = betaet ? 13 : 12;
    const int NC = (T + HBV_CHUNK - 1) / HBV_CHUNK;
    const REAL invM = ONE / (REAL)M;
    SFX(load_states)(w, c->state0, (size_t)5 * M, M, NL);
    if (!c->dynamic) SFX(gather_par)(c, w, NL, NP, 0);
    const int L = c->L, route = c->uh != NULL && M == 1;
    if (route) {  /* ring of the last L lane flows (zero before day 0) and the lanes' unit hydrographs */
        memset(w->ring, 0, sizeof(REAL) * 2 * (size_t)L * NL);
        for (int j = 0; j < L; j++)
            for (int l = 0; l < NL; l++) w->uhb[j * NL + l] = c->uh[(size_t)w->ls[l] * L + j];
    }
    for (int t0 = 0; t0 < T; t0 += HBV_CHUNK) {
        const int t1 = t0 + HBV_CHUNK < T ? t0 + HBV_CHUNK : T;
        if (do_ckpt)
            SFX(store_lanes)(w, w->S, 5, c->ckpt_out + (size_t)(t0 / HBV_CHUNK) * 5 * M, (size_t)NC * 5 * M, M, NL,
                             G * M);
        SFX(gather_forcing)(c, w, NL, t0, t1);
        for (int t = t0; t < t1; t++) {
            if (c->dynamic) SFX(gather_par)(c, w, NL, NP, t);
            else if (c->dpar) SFX(gather_dyn)(c, w, NL, t);
            SFX(fwd_lanes)(NL, w->fb + (size_t)(t - t0) * 3 * NL, w->pb, w->S, NULL, w->qm, betaet, 0);
            if (route) {  /* out[t] = sum_j uh[j] q[t - j], j = 0, 1, ... (the order of hbv_route_forward) */
                /* ring [2L][NL]: day t is stored at rows p and p + L (p = t mod L), so the days t - j,
                 * j = 0..L-1, are the consecutive rows p + L - j: no modulo inside the sum */
                const int pos = t % L;
                REAL *restrict r1 = w->ring + (size_t)pos * NL, *restrict r2 = w->ring + (size_t)(pos + L) * NL;
                for (int l = 0; l < NL; l++) r1[l] = r2[l] = (ZERO + w->qm[l]) * invM;
                REAL *restrict acc = w->qm;
                for (int l = 0; l < NL; l++) acc[l] = ZERO;
                const REAL *restrict x = w->ring + (size_t)(pos + L) * NL;
                const REAL *restrict u = w->uhb;
                for (int j = 0; j < L; j++, x -= NL, u += NL)
                    for (int l = 0; l < NL; l++) acc[l] += u[l] * x[l];
                for (int g = 0; g < G; g++) c->q[(size_t)t * B + b0 + g] = acc[g];
            } else {
                SFX(write_q)(c->q + (size_t)t * B + b0, w->qm, G, M, invM);
            }
        }
    }
    if (c->state_out) SFX(store_lanes)(w, w->S, 5, c->state_out, (size_t)5 * M, M, NL, G * M);
}

HBV_INLINE void SFX(bwd_block_impl)(const SFX(ctx) *c, const SFX(work) *w, int b0, int G, int NL, const int betaet) {
    const int T = c->T, B = c->B, M = c->M, NP = betaet ? 13 : 12;
    const int NS = NS_BASE + (betaet ? 2 : 0);
    const int NC = (T + HBV_CHUNK - 1) / HBV_CHUNK;
    const REAL invM = ONE / (REAL)M;
    (void)b0;
    if (c->gstate_T) {
        for (int s = 0; s < 5; s++)
            for (int l = 0; l < NL; l++)
                w->A[s * NL + l] = c->gstate_T[((size_t)w->ls[l] * 5 + s) * M + w->lm[l]];
    } else {
        memset(w->A, 0, sizeof(REAL) * 5 * (size_t)NL);
    }
    memset(w->gb, 0, sizeof(REAL) * NP * (size_t)NL);
    if (!c->dynamic) SFX(gather_par)(c, w, NL, NP, 0);
    for (int ch = NC - 1; ch >= 0; ch--) {
        const int t0 = ch * HBV_CHUNK, t1 = t0 + HBV_CHUNK < T ? t0 + HBV_CHUNK : T;
        SFX(load_states)(w, c->ckpt + (size_t)ch * 5 * M, (size_t)NC * 5 * M, M, NL);
        SFX(gather_forcing)(c, w, NL, t0, t1);
        for (int t = t0; t < t1; t++) {  /* re-run the chunk, recording the tape */
            if (c->dynamic) SFX(gather_par)(c, w, NL, NP, t);
            else if (c->dpar) SFX(gather_dyn)(c, w, NL, t);
            SFX(fwd_lanes)(NL, w->fb + (size_t)(t - t0) * 3 * NL, w->pb, w->S, w->tape + (size_t)(t - t0) * NS * NL,
                           w->qm, betaet, 1);
        }
        for (int t = t0; t < t1; t++) {
            const REAL *gr = c->gq + (size_t)t * B;
            REAL *dst = w->gqb + (size_t)(t - t0) * NL;
            for (int l = 0; l < NL; l++) dst[l] = gr[w->ls[l]] * invM;
        }
        for (int t = t1 - 1; t >= t0; t--) {
            if (c->dynamic) {
                SFX(gather_par)(c, w, NL, NP, t);
                memset(w->gb, 0, sizeof(REAL) * NP * (size_t)NL);
            } else if (c->dpar) {
                SFX(gather_dyn)(c, w, NL, t);
            }
            SFX(bwd_lanes)(NL, w->fb + (size_t)(t - t0) * 3 * NL, w->pb, w->gb, w->tape + (size_t)(t - t0) * NS * NL,
                           w->gqb + (size_t)(t - t0) * NL, w->A, betaet);
            if (c->dynamic)
                SFX(store_lanes)(w, w->gb, NP, c->gpar + (size_t)t * B * NP * M, (size_t)NP * M, M, NL, G * M);
            else if (c->dpar)
                SFX(scatter_gdyn)(c, w, NL, G * M, t);
        }
    }
    if (!c->dynamic) SFX(store_lanes)(w, w->gb, NP, c->gpar, (size_t)NP * M, M, NL, G * M);
    if (c->gstate0) {
        for (int s = 0; s < 5; s++)
            for (int l = 0; l < G * M; l++)
                c->gstate0[((size_t)w->ls[l] * 5 + s) * M + w->lm[l]] = w->A[s * NL + l];
    }
}

HBV_CLONES void SFX(fwd_block)(const SFX(ctx) *c, const SFX(work) *w, int b0, int G, int NL) {
    if (c->betaet) {
        if (c->ckpt_out) SFX(fwd_block_impl)(c, w, b0, G, NL, 1, 1);
        else SFX(fwd_block_impl)(c, w, b0, G, NL, 1, 0);
    } else {
        if (c->ckpt_out) SFX(fwd_block_impl)(c, w, b0, G, NL, 0, 1);
        else SFX(fwd_block_impl)(c, w, b0, G, NL, 0, 0);
    }
}

HBV_CLONES void SFX(bwd_block)(const SFX(ctx) *c, const SFX(work) *w, int b0, int G, int NL) {
    if (c->betaet) SFX(bwd_block_impl)(c, w, b0, G, NL, 1);
    else SFX(bwd_block_impl)(c, w, b0, G, NL, 0);
}

static void *SFX(alloc_work)(SFX(work) *w, int NLmax, int backward) {
    const size_t NL = (size_t)NLmax;
    const size_t n = 13 * NL + 5 * NL + (size_t)HBV_CHUNK * 3 * NL + NL + 3 * 64 * NL
                     + (backward ? ((size_t)HBV_CHUNK * (NS_BASE + 2) * NL + 5 * NL + 13 * NL + (size_t)HBV_CHUNK * NL) : 0);
    const size_t bytes = ((sizeof(REAL) * n + 2 * sizeof(int) * NL + 63) / 64 + 16) * 64;
    void *vmem = NULL;
    if (posix_memalign(&vmem, 64, bytes) != 0) return NULL;
    char *mem = (char *)vmem;
    REAL *r = (REAL *)mem;
    w->pb = r; r += 13 * NL;
    w->S = r; r += 5 * NL;
    w->fb = r; r += (size_t)HBV_CHUNK * 3 * NL;
    w->qm = r; r += NL;
    w->ring = r; r += 2 * 64 * NL;
    w->uhb = r; r += 64 * NL;
    if (backward) {
        w->tape = r; r += (size_t)HBV_CHUNK * (NS_BASE + 2) * NL;
        w->A = r; r += 5 * NL;
        w->gb = r; r += 13 * NL;
        w->gqb = r; r += (size_t)HBV_CHUNK * NL;
    } else {
        w->tape = w->A = w->gb = w->gqb = NULL;
    }
    w->ls = (int *)r;
    w->lm = w->ls + NL;
    return mem;
}

/* lanes of the block of sites [b0, b0 + G): G*M real lanes, then copies of the last one up to NL */
static void SFX(set_lanes)(const SFX(work) *w, int b0, int G, int M, int NL) {
    for (int l = 0; l < NL; l++) {
        const int lr = l < G * M ? l : G * M - 1;
        w->ls[l] = b0 + lr / M;
        w->lm[l] = lr % M;
    }
}

static void SFX(run_job)(SFX(ctx) *c, int b0, int b1, int backward) {
    const int G = c->G, M = c->M;
    const int NLmax = ((G * M + HBV_VL - 1) / HBV_VL) * HBV_VL;
    SFX(work) w;
    void *mem = SFX(alloc_work)(&w, NLmax, backward);
    if (!mem) { c->err = 1; return; }  /* the entry point returns -1 */
    for (int bb = b0; bb < b1; bb += G) {
        const int g = bb + G <= b1 ? G : b1 - bb;
        const int NL = ((g * M + HBV_VL - 1) / HBV_VL) * HBV_VL;
        SFX(set_lanes)(&w, bb, g, M, NL);
        if (backward) SFX(bwd_block)(c, &w, bb, g, NL);
        else SFX(fwd_block)(c, &w, bb, g, NL);
    }
    free(mem);
}

static void SFX(fwd_job)(void *vctx, int b0, int b1) { SFX(run_job)((SFX(ctx) *)vctx, b0, b1, 0); }
static void SFX(bwd_job)(void *vctx, int b0, int b1) { SFX(run_job)((SFX(ctx) *)vctx, b0, b1, 1); }

/* threads worth starting: at least one vector of lanes each */
static int SFX(threads_for)(int nthreads, int B, int M) {
    const long vecs = ((long)B * M + HBV_VL - 1) / HBV_VL;
    return nthreads < vecs ? nthreads : (int)vecs;
}

/* Forward over T steps for all sites. ckpt may be NULL (forward only), state_out too.
 * Returns 0, or -1 when a worker could not allocate its buffers. */
int SFX(hbv_forward)(const REAL *forcing, const REAL *par, int dynamic, int T, int B, int M, int betaet,
                     const REAL *state0, REAL *state_out, REAL *q, REAL *ckpt, int nthreads)
{
    SFX(ctx) c = {forcing, par, state0, NULL, NULL, NULL, state_out, q, ckpt, NULL, NULL,
                  dynamic, T, B, M, betaet, hbv_sites_per_block(M), 0, NULL, B, NULL, 0};
    hbv_parallel(SFX(fwd_job), &c, B, SFX(threads_for)(nthreads, B, M));
    return c.err ? -1 : 0;
}

/* As hbv_forward, forward only, but site b reads forcing column fidx[b] of forcing [T][Bf][3]
 * (fidx NULL: column b; many parameter sets per basin without copying the forcing: SCE-UA
 * candidates), and with uh [B][L] (M == 1 only; NULL: no routing) q receives the routed flow,
 * computed inside the time loop from a ring of the last L days (the same sums, in the same order,
 * as hbv_route_forward on the unrouted flow with zero history). */
int SFX(hbv_forward_mapped)(const REAL *forcing, int Bf, const int *fidx, const REAL *par, int dynamic, int T,
                            int B, int M, int betaet, const REAL *state0, REAL *state_out, REAL *q,
                            const REAL *uh, int L, int nthreads)
{
    if (fidx)
        for (int b = 0; b < B; b++)
            if (fidx[b] < 0 || fidx[b] >= Bf) return -3;
    if (uh && (M != 1 || L < 1 || L > 64)) return -2;
    SFX(ctx) c = {forcing, par, state0, NULL, NULL, NULL, state_out, q, NULL, NULL, NULL,
                  dynamic, T, B, M, betaet, hbv_sites_per_block(M), 0, fidx, fidx ? Bf : B, uh, L};
    hbv_parallel(SFX(fwd_job), &c, B, SFX(threads_for)(nthreads, B, M));
    return c.err ? -1 : 0;
}

/* Adjoint pass from the checkpoints of hbv_forward. gq [T][B]: dL/dq (q = nmul average). gstate_T
 * [B][5][M] (may be NULL): dL/d(final states). Writes gpar (shape of par; overwritten) and gstate0
 * [B][5][M] (may be NULL). Returns 0, or -1 when a worker could not allocate its buffers. */
int SFX(hbv_backward)(const REAL *forcing, const REAL *par, int dynamic, int T, int B, int M, int betaet,
                       const REAL *ckpt, const REAL *gq, const REAL *gstate_T, REAL *gpar, REAL *gstate0,
                       int nthreads)
{
    SFX(ctx) c = {forcing, par, NULL, ckpt, gq, gstate_T, NULL, NULL, NULL, gpar, gstate0,
                  dynamic, T, B, M, betaet, hbv_sites_per_block(M), 0, NULL, B, NULL, 0};
    hbv_parallel(SFX(bwd_job), &c, B, SFX(threads_for)(nthreads, B, M));
    return c.err ? -1 : 0;
}

/* Mixed mode: par [B][NP][M] static, its rows drow[0..ND) replaced on day t by dpar [T][B][ND][M]
 * (distinct rows in [0, NP)). Same outputs as hbv_forward. Returns -4 for bad rows. */

int SFX(hbv_forward_dyn)(const REAL *forcing, const REAL *par, const REAL *dpar, int ND, const int *drow, int T,
                         int B, int M, int betaet, const REAL *state0, REAL *state_out, REAL *q, REAL *ckpt,
                         int nthreads)
{
    if (!dpar || !hbv_rows_ok(ND, drow, betaet ? 13 : 12)) return -4;
    SFX(ctx) c = {forcing, par, state0, NULL, NULL, NULL, state_out, q, ckpt, NULL, NULL,
                  0, T, B, M, betaet, hbv_sites_per_block(M), 0, NULL, B, NULL, 0, dpar, NULL, ND, drow};
    hbv_parallel(SFX(fwd_job), &c, B, SFX(threads_for)(nthreads, B, M));
    return c.err ? -1 : 0;
}

/* Mixed-mode adjoint: gpar [B][NP][M] gets the time-summed gradient of the static rows (zero in the
 * rows drow[]), gdpar [T][B][ND][M] the daily gradient of the time-varying rows. */
int SFX(hbv_backward_dyn)(const REAL *forcing, const REAL *par, const REAL *dpar, int ND, const int *drow, int T,
                          int B, int M, int betaet, const REAL *ckpt, const REAL *gq, const REAL *gstate_T,
                          REAL *gpar, REAL *gdpar, REAL *gstate0, int nthreads)
{
    if (!dpar || !gdpar || !hbv_rows_ok(ND, drow, betaet ? 13 : 12)) return -4;
    SFX(ctx) c = {forcing, par, NULL, ckpt, gq, gstate_T, NULL, NULL, NULL, gpar, gstate0,
                  0, T, B, M, betaet, hbv_sites_per_block(M), 0, NULL, B, NULL, 0, dpar, gdpar, ND, drow};
    hbv_parallel(SFX(bwd_job), &c, B, SFX(threads_for)(nthreads, B, M));
    return c.err ? -1 : 0;
}

/* ---- routing: out[t][b] = sum_{j=0}^{L-1} uh[b][j] x[H + t - j][b], x = [hist (H rows); q (T rows)],
 * x = 0 before its first row. Sum in the order j = 0, 1, ..., L-1. Vectorised over sites. */
typedef struct {
    const REAL *q, *hist, *uhT, *gout;
    REAL *out, *gq, *guhT;
    int T, H, B, L;
} SFX(rctx);

HBV_INLINE const REAL *SFX(xrow)(const SFX(rctx) *c, int i) {  /* row i of x, NULL before the start */
    return i < 0 ? NULL : (i < c->H ? c->hist + (size_t)i * c->B : c->q + (size_t)(i - c->H) * c->B);
}

/* Sites [b, b + nl) of the routing, nl <= HBV_VL. Called with nl = HBV_VL and L = 15 as constants
 * where possible (inlined), so the lane loops have fixed trip counts and the accumulators and unit
 * hydrograph stay in registers. Every output is a sum in a fixed order (out and gq: j = 0, 1, ...;
 * guh: t = 0, 1, ...), whatever the blocking and thread count. */
HBV_INLINE void SFX(route_fwd_lanes)(const SFX(rctx) *c, int b, const int nl, const int L) {
    const int B = c->B, T = c->T, H = c->H;
    for (int t = 0; t < T; t++) {
        REAL acc[HBV_VL];
        for (int l = 0; l < nl; l++) acc[l] = ZERO;
        if (t >= L - 1) {  /* all L rows inside q */
            for (int j = 0; j < L; j++) {
                const REAL *restrict x = c->q + (size_t)(t - j) * B + b;
                const REAL *restrict u = c->uhT + (size_t)j * B + b;
                for (int l = 0; l < nl; l++) acc[l] += u[l] * x[l];
            }
        } else {
            for (int j = 0; j < L; j++) {
                const REAL *restrict x = SFX(xrow)(c, H + t - j);
                if (!x) break;
                const REAL *restrict u = c->uhT + (size_t)j * B + b;
                for (int l = 0; l < nl; l++) acc[l] += u[l] * x[b + l];
            }
        }
        REAL *restrict o = c->out + (size_t)t * B + b;
        for (int l = 0; l < nl; l++) o[l] = acc[l];
    }
}

HBV_INLINE void SFX(route_bwd_lanes)(const SFX(rctx) *c, int b, const int nl, const int L) {
    const int B = c->B, T = c->T, H = c->H;
    for (int s = 0; s < T; s++) {  /* gq[s] = sum_j uh[j] gout[s + j] */
        REAL acc[HBV_VL];
        for (int l = 0; l < nl; l++) acc[l] = ZERO;
        if (s + L <= T) {
            for (int j = 0; j < L; j++) {
                const REAL *restrict go = c->gout + (size_t)(s + j) * B + b;
                const REAL *restrict u = c->uhT + (size_t)j * B + b;
                for (int l = 0; l < nl; l++) acc[l] += u[l] * go[l];
            }
        } else {
            for (int j = 0; j < T - s; j++) {
                const REAL *restrict go = c->gout + (size_t)(s + j) * B + b;
                const REAL *restrict u = c->uhT + (size_t)j * B + b;
                for (int l = 0; l < nl; l++) acc[l] += u[l] * go[l];
            }
        }
        REAL *restrict gq = c->gq + (size_t)s * B + b;
        for (int l = 0; l < nl; l++) gq[l] = acc[l];
    }
    /* guh[j] = sum_t gout[t] x[H + t - j], t ascending; one pass over t for all j */
    REAL acc[64][HBV_VL];
    for (int j = 0; j < L; j++)
        for (int l = 0; l < nl; l++) acc[j][l] = ZERO;
    const int tfast = L - 1 < T ? L - 1 : T;
    for (int t = 0; t < tfast; t++) {  /* rows before t = L - 1 may lie in hist or before x */
        const REAL *restrict go = c->gout + (size_t)t * B + b;
        for (int j = 0; j < L; j++) {
            const REAL *restrict x = SFX(xrow)(c, H + t - j);
            if (!x) break;
            for (int l = 0; l < nl; l++) acc[j][l] += go[l] * x[b + l];
        }
    }
    for (int t = tfast; t < T; t++) {
        const REAL *restrict go = c->gout + (size_t)t * B + b;
        for (int j = 0; j < L; j++) {
            const REAL *restrict x = c->q + (size_t)(t - j) * B + b;
            for (int l = 0; l < nl; l++) acc[j][l] += go[l] * x[l];
        }
    }
    for (int j = 0; j < L; j++) {
        REAL *restrict gu = c->guhT + (size_t)j * B + b;
        for (int l = 0; l < nl; l++) gu[l] = acc[j][l];
    }
}

/* Blocks of HBV_VL sites; a last partial block is shifted back to overlap its neighbour (the overlap
 * is recomputed with the same values) when the range is wide enough. */
#define HBV_ROUTE_DISPATCH(fn)                                                                      \
    const SFX(rctx) *c = (const SFX(rctx) *)vctx;                                                    \
    const int fixedL = c->L == 15;                                                                  \
    for (int b = b0; b < b1; b += HBV_VL) {                                                         \
        int bb = b;                                                                                 \
        if (bb + HBV_VL > b1) {                                                                     \
            if (b1 - b0 < HBV_VL) {                                                                 \
                fn(c, bb, b1 - bb, c->L);                                                           \
                break;                                                                              \
            }                                                                                       \
            bb = b1 - HBV_VL;                                                                       \
        }                                                                                           \
        if (fixedL) fn(c, bb, HBV_VL, 15);                                                          \
        else fn(c, bb, HBV_VL, c->L);                                                               \
    }

HBV_CLONES void SFX(route_fwd_job)(void *vctx, int b0, int b1) { HBV_ROUTE_DISPATCH(SFX(route_fwd_lanes)) }
HBV_CLONES void SFX(route_bwd_job)(void *vctx, int b0, int b1) { HBV_ROUTE_DISPATCH(SFX(route_bwd_lanes)) }

/* uh [B][L]; hist [H][B] (H may be 0, hist NULL); q [T][B] -> out [T][B] */
int SFX(hbv_route_forward)(const REAL *q, const REAL *hist, int H, const REAL *uh, int T, int B, int L, REAL *out,
                           int nthreads)
{
    if (L < 1 || L > 64) return -2;
    REAL *uhT = (REAL *)malloc(sizeof(REAL) * (size_t)L * B + 1);
    if (!uhT) return -1;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < L; j++) uhT[(size_t)j * B + b] = uh[(size_t)b * L + j];
    SFX(rctx) c = {q, hist, uhT, NULL, out, NULL, NULL, T, H, B, L};
    hbv_parallel(SFX(route_fwd_job), &c, B, (long)T * B * L < 500000L ? 1 : nthreads);
    free(uhT);
    return 0;
}

/* gradients of hbv_route_forward: gout [T][B] -> gq [T][B], guh [B][L] */
int SFX(hbv_route_backward)(const REAL *q, const REAL *hist, int H, const REAL *uh, int T, int B, int L,
                            const REAL *gout, REAL *gq, REAL *guh, int nthreads)
{
    if (L < 1 || L > 64) return -2;
    REAL *uhT = (REAL *)malloc(sizeof(REAL) * 2 * (size_t)L * B + 1);
    if (!uhT) return -1;
    REAL *guhT = uhT + (size_t)L * B;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < L; j++) uhT[(size_t)j * B + b] = uh[(size_t)b * L + j];
    SFX(rctx) c = {q, hist, uhT, gout, NULL, gq, guhT, T, H, B, L};
    hbv_parallel(SFX(route_bwd_job), &c, B, (long)T * B * L < 500000L ? 1 : nthreads);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < L; j++) guh[(size_t)b * L + j] = guhT[(size_t)j * B + b];
    free(uhT);
    return 0;
}

/* 0 when every precip and pet value is finite and >= 0 and every temperature finite; 1 otherwise
 * (the caller then locates the first bad value). forcing [n][3]. Branch-free, one pass. */
HBV_CLONES int SFX(hbv_forcing_bad)(const REAL *forcing, long n) {
    const REAL big = HMAX;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        const REAL P = forcing[3 * i], Tm = forcing[3 * i + 1], E = forcing[3 * i + 2];
        bad |= !((P >= 0) & (P <= big)) | !((Tm >= -big) & (Tm <= big)) | !((E >= 0) & (E <= big));
    }
    return bad;
}
#undef ZERO
#undef ONE
#endif
