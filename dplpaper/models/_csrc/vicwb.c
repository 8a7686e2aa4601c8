/* The VIC-style water-balance model of dplpaper.models.vicwb, one day after another, in C.
 *
 * Same equations, same order of operations and the same float64 arithmetic as the NumPy
 * reference (VICStyleModel.run with backend="numpy"); tested equal to it (to the last few ulps:
 * pow() may round differently from NumPy's). Sites are independent; each runs its whole time
 * loop. Compiled without -ffast-math and with -ffp-contract=off (no fused multiply-add), so the
 * results do not depend on the machine's vector ISA.
 *
 * Layout (C order): forcing [T][S][3] (precip mm/d, temp degC, pet mm/d); par [S][5] physical
 * (INFILT, Dsmax, Ds, Ws, EXPT); smax, sres, sfc, swp, drain, kdt [3][S]; su_max [S];
 * z [3] (mm per unit volumetric content); consts: ddf, t_snow, t_rain, t_melt, bare, r0, r1, r2;
 * state S [3][S] and swe [S] (in: initial, out: final); out [10][T - warmup][S] in the order
 * soil_moisture, soil_moisture_2, soil_moisture_3, et, surface_runoff, baseflow, runoff, swe,
 * soil_water, storage.
 */
#include <math.h>

int vicwb_abi_version(void) { return 1; }

static inline double clip(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
static inline double dmin(double a, double b) { return a < b ? a : b; }
static inline double dmax(double a, double b) { return a > b ? a : b; }

void vicwb_run(int n_t, int n_s, int warmup, const double *forcing, const double *par,
               const double *smax, const double *sres, const double *sfc, const double *swp,
               const double *drain, const double *kdt, const double *su_max, const double *z,
               const double *consts, double *S, double *swe_io, double *out)
{
    const double ddf = consts[0], t_snow = consts[1], t_rain = consts[2], t_melt = consts[3];
    const double bare = consts[4];
    const double roots[3] = {consts[5], consts[6], consts[7]};
    const long n_out = (long)(n_t - warmup);
    const long plane = n_out * (long)n_s;
    for (int s = 0; s < n_s; ++s) {
        const double b = par[5 * s + 0], dsmax = par[5 * s + 1], ds = par[5 * s + 2], ws = par[5 * s + 3];
        const double expt = par[5 * s + 4];
        double st[3] = {S[s], S[n_s + s], S[2 * n_s + s]};
        double mx[3], rs_[3], fc[3], wp[3], dd[3], kd[3];
        for (int l = 0; l < 3; ++l) {
            mx[l] = smax[l * n_s + s]; rs_[l] = sres[l * n_s + s]; fc[l] = sfc[l * n_s + s];
            wp[l] = swp[l * n_s + s]; dd[l] = drain[l * n_s + s]; kd[l] = kdt[l * n_s + s];
        }
        const double sumax = su_max[s];
        double swe = swe_io[s];
        for (int t = 0; t < n_t; ++t) {
            const double *f = forcing + ((long)t * n_s + s) * 3;
            const double prcp = f[0], temp = f[1], pet = f[2];
            /* 1. snow */
            const double fs = clip((t_rain - temp) / (t_rain - t_snow), 0.0, 1.0);
            const double snow = fs * prcp;
            const double rain = prcp - snow;
            swe = swe + snow;
            const double melt = dmin(swe, ddf * dmax(temp - t_melt, 0.0));
            swe = swe - melt;
            const double p_in = rain + melt;
            /* 2. surface runoff (VIC curve on layers 1+2) */
            const double s_u = st[0] + st[1];
            const double frac = clip(1.0 - s_u / sumax, 0.0, 1.0);
            const double im = (1.0 + b) * sumax;
            const double i0 = im * (1.0 - pow(frac, 1.0 / (1.0 + b)));
            const double deficit = sumax - dmin(s_u, sumax);
            const double tail = sumax * pow(clip(1.0 - (i0 + p_in) / im, 0.0, 1.0), 1.0 + b);
            double rs = dmin(dmax(p_in - deficit + tail, 0.0), p_in);
            const double infil = p_in - rs;
            const double to1 = dmin(infil, mx[0] - st[0]);
            st[0] = st[0] + to1;
            const double to2 = dmin(infil - to1, mx[1] - st[1]);
            st[1] = st[1] + to2;
            rs = rs + (infil - to1 - to2);
            /* 3. Brooks-Corey drainage 1->2, 2->3 */
            for (int l = 0; l < 2; ++l) {
                const double se = (st[l] - rs_[l]) / dd[l];
                const double sec = clip(se, 0.0, 1.0);
                const double se_new = sec * pow(1.0 + (expt - 1.0) * kd[l] * pow(sec, expt - 1.0), 1.0 / (1.0 - expt));
                double q = dmax(dd[l] * (clip(se, 0.0, 1.0) - se_new), 0.0);
                q = dmin(dmin(q, mx[l + 1] - st[l + 1]), dmax(st[l] - rs_[l], 0.0));
                st[l] = st[l] - q;
                st[l + 1] = st[l + 1] + q;
            }
            /* 4. evapotranspiration */
            const double beta_e = clip((st[0] - rs_[0]) / (fc[0] - rs_[0]), 0.0, 1.0);
            const double es = dmin(bare * pet * beta_e, dmax(st[0] - rs_[0], 0.0));
            st[0] = st[0] - es;
            double tr[3];
            for (int l = 0; l < 3; ++l) {
                const double beta = clip((st[l] - wp[l]) / (fc[l] - wp[l]), 0.0, 1.0);
                tr[l] = dmin((1.0 - bare) * roots[l] * pet * beta, dmax(st[l] - wp[l], 0.0));
            }
            for (int l = 0; l < 3; ++l) st[l] = st[l] - tr[l];
            const double et = es + ((tr[0] + tr[1]) + tr[2]);
            /* 5. ARNO baseflow */
            const double x = clip((st[2] - rs_[2]) / dd[2], 0.0, 1.0);
            const double lin = ds * dsmax / ws;
            const double over = dmax((x - ws) / dmax(1.0 - ws, 1e-12), 0.0);
            const double qb = dmin(lin * x + (dsmax - lin) * (over * over), dmax(st[2] - rs_[2], 0.0));
            st[2] = st[2] - qb;
            if (t >= warmup) {
                const long i = (long)(t - warmup) * n_s + s;
                const double sw = st[0] + st[1] + st[2];
                out[0 * plane + i] = st[0] / z[0];
                out[1 * plane + i] = st[1] / z[1];
                out[2 * plane + i] = st[2] / z[2];
                out[3 * plane + i] = et;
                out[4 * plane + i] = rs;
                out[5 * plane + i] = qb;
                out[6 * plane + i] = rs + qb;
                out[7 * plane + i] = swe;
                out[8 * plane + i] = sw;
                out[9 * plane + i] = sw + swe;
            }
        }
        S[s] = st[0]; S[n_s + s] = st[1]; S[2 * n_s + s] = st[2];
        swe_io[s] = swe;
    }
}
