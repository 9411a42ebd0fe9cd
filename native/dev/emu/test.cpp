// Every kernel of native/cuda under the host emulator, against the CPU reference of native/cpu (the
// truth: the network ops in double through their templates, the tensor ops through the float
// functions the CPU backend runs). Each case runs under forward, reverse and shuffled thread (and
// block) order, and its outputs must be bit-identical across the three. Inputs are random and
// non-zero, overwritten outputs start as NaN (every element must be written), accumulated ones from
// random values. Buffers are exact-size heap blocks, so ASan sees any access past an end.
//   emu_test [--checksums FILE]   FILE: one line per case with an FNV-1a hash of its outputs
#include <algorithm>
#include <cstdlib>
#include <cinttypes>
#include <cstdarg>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "emu.h"
#include "kintsugi/backend.h"
#include "nn.h"
#include "parallel.h"
#include "stream_rule.h"         // firstlight_cases.inc
#include "kintsugi/precision.h"  // tensorcore_cases.inc
#include "mma_check.h"
#include "tc_conv.h"
#include "kintsugi/unet_engine.h"  // unet_cases.inc
// The CPU reference of the network ops (header templates).
#include "attention.h"
#include "conv2d.h"
#include "groupnorm.h"
#include "linear.h"
#include "silu.h"
#include "time_embedding.h"
#include "upsample.h"
#include "unet.h"  // the CPU graph (cpu/unet.h): unet_cases.inc

// The CPU graph in double, the reference of unet_cases.inc. cpu/unet.cpp (linked for the float graph, the
// odd networks' rounded reference) instantiates it too: explicit instantiations are COMDAT, one is kept.
template class ks::UNetGraph<ks::cpu::CpuOps<double>>;

namespace {

const char* const kKernels[] = {
#include "kernels.inc"
};

using V = std::vector<float>;
using D = std::vector<double>;
using Outs = std::vector<V>;
std::mt19937 rng(7);
int passed = 0, failed = 0;
FILE* checksums = nullptr;

V randv(int64_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> u(lo, hi);
  V v(n);
  for (auto& x : v) {
    x = u(rng);
    if (x == 0) x = 0.25f;
  }
  return v;
}
D dbl(const V& v) { return D(v.begin(), v.end()); }
V nans(int64_t n) { return V(n, NAN); }

// Device memory stand-in: an exact-size heap copy.
struct Dev {
  float* p;
  int64_t n;
  explicit Dev(const V& v) : n(static_cast<int64_t>(v.size())) {
    p = static_cast<float*>(malloc(std::max<int64_t>(n, 1) * sizeof(float)));
    if (n) memcpy(p, v.data(), n * sizeof(float));
  }
  ~Dev() { free(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  V get() const { return V(p, p + n); }
};

uint64_t fnv(const Outs& outs) {
  uint64_t h = 1469598103934665603ull;
  for (const V& v : outs) {
    const auto* b = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h;
}

// One line of the table: the worst error over the case's outputs, relative to max(|reference|, 1).
struct Row {
  Row(std::string kernel_, std::string name_) : kernel(std::move(kernel_)), name(std::move(name_)) {}
  std::string kernel, name;
  double err = 0, tol = 0;
  bool exact = true;  // every comparison so far was bit for bit
  std::string worst;
  bool orders = true;
  const char* grid = "yes";
  bool summary = false;  // a row about the whole run: no error or order columns
  std::vector<std::string> notes;

  void fail(const std::string& what) { notes.push_back(what); }

  void near(const char* what, const V& got, const D& want, double tol_) {
    if (got.size() != want.size()) return fail(std::string(what) + ": wrong size");
    double maxerr = 0, maxref = 0;
    int64_t bad = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (!std::isfinite(got[i])) ++bad;
      maxerr = std::max(maxerr, std::fabs(got[i] - want[i]));
      maxref = std::max(maxref, std::fabs(want[i]));
    }
    const double e = maxerr / std::max(maxref, 1.0);
    if (exact || e / tol_ > err / std::max(tol, 1e-300)) {
      err = e, tol = tol_, worst = what;
    }
    exact = false;
    if (bad)
      fail(std::string(what) + ": " + std::to_string(bad) + " non-finite values (unwritten?)");
    else if (!(e <= tol_))
      fail(std::string(what) + ": error " + std::to_string(e) + " over " + std::to_string(tol_));
  }
  // Relative to |reference| (for single values: sums).
  void rel(const char* what, float got, double want, double tol_) {
    const double e = std::fabs(got - want) / std::max(std::fabs(want), 1e-30);
    if (exact || e / tol_ > err / std::max(tol, 1e-300)) err = e, tol = tol_, worst = what;
    exact = false;
    if (!(e <= tol_)) fail(std::string(what) + ": relative error " + std::to_string(e));
  }
  // Bit for bit.
  void same(const char* what, const V& got, const V& want) {
    if (got.size() != want.size()) return fail(std::string(what) + ": wrong size");
    int64_t diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff += memcmp(&got[i], &want[i], sizeof(float)) != 0;
    if (diff)
      fail(std::string(what) + ": " + std::to_string(diff) + " of " + std::to_string(got.size()) + " values differ");
  }

  void print(uint64_t checksum) {
    const bool ok = notes.empty();
    (ok ? passed : failed)++;
    char err_s[48];
    if (summary)
      snprintf(err_s, sizeof err_s, "%-9s %-7s", "-", "-");
    else if (exact)
      snprintf(err_s, sizeof err_s, "%-9s %-7s", "0", "exact");
    else
      snprintf(err_s, sizeof err_s, "%-9.1e %-7.0e", err, tol);
    printf("%-15s %-50s %s %-6s %-4s %s\n", kernel.c_str(), name.c_str(), err_s,
           summary || grid[0] == '-' ? "-"
           : orders                  ? "yes"
                                     : "NO",
           summary ? "-" : grid, ok ? "ok" : "FAIL");
    for (const auto& n : notes) printf("    %s\n", n.c_str());
    if (checksums) fprintf(checksums, "%s\t%s\t%016" PRIx64 "\n", kernel.c_str(), name.c_str(), checksum);
  }
};

// Runs make() under the three thread orders, then once more with the grid that grid_for picks for a
// device of 7 SMs instead of 1; then check(row, outputs of the first run). The results of the network
// ops must not depend on the SM count (native/dev/cuda-nn.md); sum's grouping does, by design, so its
// cases pass grid_may_vary and only report it.
template <class Make, class Check>
void run_case(const char* kernel, const std::string& name, Make make, Check check, bool grid_may_vary = false,
              bool once = false) {
  Row row(kernel, name);
  const long live = emu_live_allocations();
  Outs first;
  bool ran = false;
  auto differs = [&](const Outs& outs) {
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i].size() != first[i].size() ||
          (!outs[i].empty() && memcmp(outs[i].data(), first[i].data(), outs[i].size() * sizeof(float)) != 0))
        return static_cast<int>(i);
    return -1;
  };
  try {
    for (int o : {kEmuForward, kEmuReverse, kEmuShuffled}) {
      if (once && o != kEmuForward) continue;  // a large case: one run, the forward order only
      emu_order = o;
      Outs outs = make();
      if (o == kEmuForward) {
        first = std::move(outs);
      } else if (const int i = differs(outs); i >= 0) {
        row.orders = false;
        row.fail("output " + std::to_string(i) + " differs under the " + (o == kEmuReverse ? "reverse" : "shuffled") +
                 " order (a missing barrier or a race)");
      }
    }
    emu_order = kEmuForward;
    emu_multiprocessors = 7;
    const Outs outs = once ? first : make();
    emu_multiprocessors = 1;
    if (once) row.orders = false, row.grid = "-";
    if (const int i = differs(outs); i >= 0) {
      row.grid = grid_may_vary ? "no*" : "NO";
      if (!grid_may_vary) row.fail("output " + std::to_string(i) + " depends on the SM count");
    }
    ran = true;
  } catch (const std::exception& e) {
    row.fail(e.what());
  }
  emu_order = kEmuForward;
  emu_multiprocessors = 1;
  if (ran) check(row, first);
  if (emu_live_allocations() != live)
    row.fail("scratch not released: " + std::to_string(emu_live_allocations() - live) + " blocks");
  row.print(fnv(first));
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[200];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// ---- tensor ops (kintsugi/backend.h) ------------------------------------------------------------

void test_fill(int64_t n) {
  run_case(
      "fill", fmt("n%ld", n),
      [&] {
        Dev out(nans(n));
        ks::cuda::fill(out.p, n, -3.25f);
        return Outs{out.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::fill(want.data(), n, -3.25f);
        row.same("out", r[0], want);
      });
}

void test_random(int64_t n, uint64_t offset) {
  const ks::RngKey key{0x0123456789abcdefull, offset, 3};
  run_case(
      "random", fmt("bits, uniform, normal: n%ld offset %#" PRIx64, n, offset),
      [&] {
        Dev bits(nans(n)), uni(nans(n)), nor(nans(n));
        ks::cuda::random_bits(reinterpret_cast<uint32_t*>(bits.p), n, key);
        ks::cuda::uniform(uni.p, n, -2.0f, 3.0f, key);
        ks::cuda::randn(nor.p, n, key);
        return Outs{bits.get(), uni.get(), nor.get()};
      },
      [&](Row& row, const Outs& r) {
        V bits(n), uni(n), nor(n);
        ks::cpu::random_bits(reinterpret_cast<uint32_t*>(bits.data()), n, key);
        ks::cpu::uniform(uni.data(), n, -2.0f, 3.0f, key);
        ks::cpu::randn(nor.data(), n, key);
        row.same("random_bits", r[0], bits);
        row.same("uniform", r[1], uni);
        row.same("randn", r[2], nor);
      });
}

void test_copy(int64_t n) {
  const V x = randv(n);
  run_case(
      "copy", fmt("device to device, n%ld", n),
      [&] {
        Dev src(x), dst(nans(n));
        ks::cuda::copy(src.p, dst.p, n);
        return Outs{dst.get(), src.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::copy(x.data(), want.data(), n);
        row.same("dst", r[0], want);
        row.same("src untouched", r[1], x);
      });
}

void test_add_scale(int64_t n) {
  const V a = randv(n, -4.f, 4.f), b = randv(n, -4.f, 4.f);
  run_case(
      "add", fmt("n%ld; out = a; out = b (in place)", n),
      [&] {
        Dev da(a), db(b), out(nans(n)), ia(a), ib(b);
        ks::cuda::add(da.p, db.p, out.p, n);
        ks::cuda::add(ia.p, db.p, ia.p, n);
        ks::cuda::add(da.p, ib.p, ib.p, n);
        return Outs{out.get(), ia.get(), ib.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::add(a.data(), b.data(), want.data(), n);
        for (int i = 0; i < 3; ++i) row.same(i == 0 ? "out" : "in place", r[i], want);
      });
  run_case(
      "scale", fmt("n%ld; in place", n),
      [&] {
        Dev da(a), out(nans(n)), ia(a);
        ks::cuda::scale(da.p, -1.75f, out.p, n);
        ks::cuda::scale(ia.p, -1.75f, ia.p, n);
        return Outs{out.get(), ia.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::scale(a.data(), -1.75f, want.data(), n);
        row.same("out", r[0], want);
        row.same("in place", r[1], want);
      });
}

void test_clamp(int64_t n) {
  V a = randv(n, -3.f, 3.f);
  a[0] = NAN, a[1] = INFINITY, a[2] = -INFINITY, a[3] = -1.0f, a[4] = 1.5f;
  run_case(
      "clamp", fmt("n%ld to [-1, 1.5], NaN and infinities; in place", n),
      [&] {
        Dev da(a), out(nans(n)), ia(a);
        ks::cuda::clamp(da.p, -1.0f, 1.5f, out.p, n);
        ks::cuda::clamp(ia.p, -1.0f, 1.5f, ia.p, n);
        return Outs{out.get(), ia.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::clamp(a.data(), -1.0f, 1.5f, want.data(), n);
        row.same("out", r[0], want);
        row.same("in place", r[1], want);
      });
}

// Sums in double on both sides; the float results should agree to the last bit or within one rounding.
void test_sum(int64_t n, bool wide) {
  V x = randv(n);
  if (wide) {  // magnitudes from 2^-20 to 2^20: the order of the double additions matters
    std::uniform_int_distribution<int> e(-20, 20);
    for (float& v : x) v = std::ldexp(v, e(rng));
  }
  run_case(
      "sum", fmt("sum, sum_squares: n%ld%s", n, wide ? ", magnitudes 2^-20..2^20" : ""),
      [&] {
        Dev dx(x), s(nans(1)), q(nans(1));
        ks::cuda::sum(dx.p, n, s.p);
        ks::cuda::sum_squares(dx.p, n, q.p);
        return Outs{s.get(), q.get()};
      },
      [&](Row& row, const Outs& r) {
        float s = NAN, q = NAN;
        ks::cpu::sum(x.data(), n, &s);
        ks::cpu::sum_squares(x.data(), n, &q);
        row.rel("sum", r[0][0], s, 2.5e-7);
        row.rel("sum_squares", r[1][0], q, 2.5e-7);
      },
      true);
}

void test_adamw(int64_t n, bool clip) {
  const V p = randv(n), g = randv(n, -0.5f, 0.5f), m = randv(n, -0.1f, 0.1f), v = randv(n, 1e-4f, 1e-2f);
  ks::AdamWConfig c;
  c.lr = 3e-3f;
  c.weight_decay = clip ? 0.1f : 0.01f;
  c.step = clip ? 7 : 1;
  double sq = 0;
  for (float x : g) sq += double(x) * x;
  const V sumsq{static_cast<float>(sq)};
  c.max_norm = clip ? static_cast<float>(0.5 * std::sqrt(sq)) : 0.0f;
  run_case(
      "adamw", fmt("n%ld step %ld%s", n, long(c.step), clip ? ", clipping active" : ""),
      [&] {
        Dev dp(p), dg(g), dm(m), dv(v), ds(sumsq);
        ks::cuda::adamw(dp.p, dg.p, dm.p, dv.p, ds.p, n, c);
        return Outs{dp.get(), dm.get(), dv.get(), dg.get()};
      },
      [&](Row& row, const Outs& r) {
        V wp = p, wm = m, wv = v;
        ks::cpu::adamw(wp.data(), g.data(), wm.data(), wv.data(), sumsq.data(), n, c);
        row.near("params", r[0], dbl(wp), 1e-6);
        row.near("m", r[1], dbl(wm), 1e-6);
        row.near("v", r[2], dbl(wv), 1e-6);
        row.same("grads untouched", r[3], g);
      });
}

void test_ema(int64_t n) {
  const V e = randv(n), p = randv(n);
  run_case(
      "ema", fmt("n%ld decay 0.999", n),
      [&] {
        Dev de(e), dp(p);
        ks::cuda::ema_update(de.p, dp.p, n, 0.999f);
        return Outs{de.get()};
      },
      [&](Row& row, const Outs& r) {
        V want = e;
        ks::cpu::ema_update(want.data(), p.data(), n, 0.999f);
        row.near("ema", r[0], dbl(want), 1e-6);
      });
}

void test_combine(int terms, int64_t n, int64_t per) {
  std::vector<V> x, c;
  for (int k = 0; k < 3; ++k) {
    x.push_back(randv(n * per));
    c.push_back(randv(n, -2.f, 2.f));
  }
  run_case(
      "combine", fmt("%d terms, n%ld x %ld; out aliasing x0", terms, n, per),
      [&] {
        Dev x0(x[0]), x1(x[1]), x2(x[2]), c0(c[0]), c1(c[1]), c2(c[2]), out(nans(n * per)), al(x[0]);
        const float* xs[3] = {x0.p, x1.p, x2.p};
        const float* cs[3] = {c0.p, c1.p, c2.p};
        ks::cuda::combine(out.p, xs, cs, terms, n, per);
        const float* xa[3] = {al.p, x1.p, x2.p};
        ks::cuda::combine(al.p, xa, cs, terms, n, per);
        return Outs{out.get(), al.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n * per);
        const float* xs[3] = {x[0].data(), x[1].data(), x[2].data()};
        const float* cs[3] = {c[0].data(), c[1].data(), c[2].data()};
        ks::cpu::combine(want.data(), xs, cs, terms, n, per);
        row.near("out", r[0], dbl(want), 1e-6);
        row.near("aliased", r[1], dbl(want), 1e-6);
      });
}

// ---- degradation operators (lib/corruption) -----------------------------------------------------

void test_mul(int64_t n) {
  const V a = randv(n, -4.f, 4.f), b = randv(n, -4.f, 4.f);
  run_case(
      "mul", fmt("n%ld; in place", n),
      [&] {
        Dev da(a), db(b), out(nans(n)), ia(a);
        ks::cuda::mul(da.p, db.p, out.p, n);
        ks::cuda::mul(ia.p, db.p, ia.p, n);
        return Outs{out.get(), ia.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::mul(a.data(), b.data(), want.data(), n);
        row.same("out", r[0], want);
        row.same("in place", r[1], want);
      });
}

// Both directions, every coefficient and coefficient 0 only, against the CPU float functions.
void test_block_average(int64_t planes, int64_t h, int64_t w, int k) {
  const int64_t m = int64_t(k) * k, big = planes * h * w * m, small = planes * h * w;
  const V x = randv(big), c = randv(big), c0 = randv(small);
  run_case(
      "block_average", fmt("planes%ld %ldx%ld blocks of k%d: vt, v; full and coefficient 0", planes, h, w, k),
      [&] {
        Dev dx(x), dc(c), dc0(c0), vt(nans(big)), vt0(nans(small)), v(nans(big)), v0(nans(big));
        ks::cuda::block_average_vt(dx.p, vt.p, planes, h, w, k, m, 1.0f);
        ks::cuda::block_average_vt(dx.p, vt0.p, planes, h, w, k, 1, 0.5f);
        ks::cuda::block_average_v(dc.p, v.p, planes, h, w, k, m, 1.0f);
        ks::cuda::block_average_v(dc0.p, v0.p, planes, h, w, k, 1, 2.0f);
        return Outs{vt.get(), vt0.get(), v.get(), v0.get()};
      },
      [&](Row& row, const Outs& r) {
        V vt(big), vt0(small), v(big), v0(big);
        ks::cpu::block_average_vt(x.data(), vt.data(), planes, h, w, k, m, 1.0f);
        ks::cpu::block_average_vt(x.data(), vt0.data(), planes, h, w, k, 1, 0.5f);
        ks::cpu::block_average_v(c.data(), v.data(), planes, h, w, k, m, 1.0f);
        ks::cpu::block_average_v(c0.data(), v0.data(), planes, h, w, k, 1, 2.0f);
        row.near("vt", r[0], dbl(vt), 1e-6);
        row.near("vt coefficient 0", r[1], dbl(vt0), 1e-6);
        row.near("v", r[2], dbl(v), 1e-6);
        row.near("v from coefficient 0", r[3], dbl(v0), 1e-6);
      });
}

// Forward and inverse, and in place: rows and columns of different lengths, lines per block > 1 and 1.
void test_fft2(int64_t n, int64_t h, int64_t w) {
  const int64_t size = n * 2 * h * w;
  const V x = randv(size);
  run_case(
      "fft2", fmt("n%ld %ldx%ld forward, inverse; in place", n, h, w),
      [&] {
        Dev dx(x), f(nans(size)), i(nans(size)), ip(x);
        ks::cuda::fft2(dx.p, f.p, n, h, w, false);
        ks::cuda::fft2(dx.p, i.p, n, h, w, true);
        ks::cuda::fft2(ip.p, ip.p, n, h, w, false);
        return Outs{f.get(), i.get(), ip.get()};
      },
      [&](Row& row, const Outs& r) {
        V f(size), i(size);
        ks::cpu::fft2(x.data(), f.data(), n, h, w, false);
        ks::cpu::fft2(x.data(), i.data(), n, h, w, true);
        row.near("forward", r[0], dbl(f), 1e-6);
        row.near("inverse", r[1], dbl(i), 1e-6);
        row.near("in place", r[2], dbl(f), 1e-6);
      });
}

// ---- network ops (native/cuda/nn.h) -------------------------------------------------------------

void test_conv(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout, int k, int stride, bool bias, bool want_gx) {
  const ks::Conv2dShape s{n, cin, h, w, cout, k, stride};
  const std::string name = fmt("n%ld cin%ld %ldx%ld cout%ld k%d s%d%s%s", n, cin, h, w, cout, k, stride,
                               bias ? "" : " nobias", want_gx ? "" : " nogx");
  const int64_t ysz = n * cout * s.ho() * s.wo(), xsz = n * cin * h * w, wsz = cout * cin * k * k;
  const V x = randv(xsz), wt = randv(wsz), b = randv(cout), gy = randv(ysz), gw0 = randv(wsz), gb0 = randv(cout);
  run_case(
      "conv2d", name,
      [&] {
        Dev dx(x), dw(wt), db(b), dy(nans(ysz)), dgy(gy), dgx(nans(xsz)), dgw(gw0), dgb(gb0);
        ks::cuda::conv2d_forward(dx.p, dw.p, bias ? db.p : nullptr, dy.p, s);
        ks::cuda::conv2d_backward(dx.p, dw.p, dgy.p, want_gx ? dgx.p : nullptr, dgw.p, bias ? dgb.p : nullptr, s);
        return Outs{dy.get(), dgx.get(), dgw.get(), dgb.get()};
      },
      [&](Row& row, const Outs& r) {
        D y(ysz), gx(xsz), gw = dbl(gw0), gb = dbl(gb0), xd = dbl(x), wd = dbl(wt), bd = dbl(b), gyd = dbl(gy);
        ks::cpu::conv2d_forward(xd.data(), wd.data(), bias ? bd.data() : nullptr, y.data(), s);
        ks::cpu::conv2d_backward(xd.data(), wd.data(), gyd.data(), gx.data(), gw.data(), bias ? gb.data() : nullptr, s);
        row.near("y", r[0], y, 2e-6);
        if (want_gx)
          row.near("gx", r[1], gx, 2e-6);
        else
          row.same("gx untouched (null)", r[1], nans(xsz));
        row.near("gw", r[2], gw, 2e-6);
        if (bias)
          row.near("gb", r[3], gb, 2e-6);
        else
          row.same("gb untouched (null)", r[3], gb0);
      });
}

void test_groupnorm(int64_t n, int64_t c, int64_t hw, int groups) {
  const ks::GroupNormShape s{n, c, hw, groups};
  const int64_t sz = n * c * hw, ng = n * groups;
  V x = randv(sz, -2.f, 3.f);
  for (float& v : x) v += 5.0f;  // a mean far from zero: the two-pass variance matters
  const V gamma = randv(c, 0.5f, 1.5f), beta = randv(c), gy = randv(sz), gg0 = randv(c), gb0 = randv(c);
  run_case(
      "groupnorm", fmt("n%ld c%ld hw%ld groups %d", n, c, hw, groups),
      [&] {
        Dev dx(x), dg(gamma), db(beta), dy(nans(sz)), dm(nans(ng)), dr(nans(ng)), dgy(gy), dgx(nans(sz)), dgg(gg0),
            dgb(gb0);
        ks::cuda::groupnorm_forward(dx.p, dg.p, db.p, dy.p, dm.p, dr.p, s);
        ks::cuda::groupnorm_backward(dx.p, dg.p, dm.p, dr.p, dgy.p, dgx.p, dgg.p, dgb.p, s);
        return Outs{dy.get(), dm.get(), dr.get(), dgx.get(), dgg.get(), dgb.get()};
      },
      [&](Row& row, const Outs& r) {
        D y(sz), m(ng), rs(ng), gx(sz), gg = dbl(gg0), gb = dbl(gb0), xd = dbl(x), gd = dbl(gamma), bd = dbl(beta),
                                        gyd = dbl(gy);
        ks::cpu::groupnorm_forward(xd.data(), gd.data(), bd.data(), y.data(), m.data(), rs.data(), s);
        ks::cpu::groupnorm_backward(xd.data(), gd.data(), m.data(), rs.data(), gyd.data(), gx.data(), gg.data(),
                                    gb.data(), s);
        if (hw * (c / groups) > 1) {
          row.near("y", r[0], y, 5e-6);
        } else {
          // One element per group: variance 0, rstd = 1/sqrt(eps), and the reference's float form x * a + b
          // cancels; the kernel has that form, so compare with the CPU's float instantiation.
          V yf(sz), mf(ng), rf(ng);
          ks::cpu::groupnorm_forward(x.data(), gamma.data(), beta.data(), yf.data(), mf.data(), rf.data(), s);
          row.near("y (vs CPU float)", r[0], dbl(yf), 1e-6);
        }
        row.near("mean", r[1], m, 2e-6);
        row.near("rstd", r[2], rs, 2e-6);
        row.near("gx", r[3], gx, 2e-5);
        row.near("ggamma", r[4], gg, 2e-6);
        row.near("gbeta", r[5], gb, 2e-6);
      });
}

// GroupNorm + SiLU fused (groupnorm_silu.cu) against the unfused double reference: groupnorm then silu
// forward, silu_backward then groupnorm_backward (none of the fused code on the CPU side). gx aliasing gy
// is allowed by the op and checked in the second run.
void test_groupnorm_silu(int64_t n, int64_t c, int64_t hw, int groups, bool in_place) {
  const ks::GroupNormShape s{n, c, hw, groups};
  const int64_t sz = n * c * hw, ng = n * groups;
  V x = randv(sz, -2.f, 3.f);
  for (float& v : x) v += 5.0f;
  const V gamma = randv(c, 0.5f, 1.5f), beta = randv(c), gy = randv(sz), gg0 = randv(c), gb0 = randv(c);
  run_case(
      "groupnorm_silu", fmt("n%ld c%ld hw%ld groups %d%s", n, c, hw, groups, in_place ? " gx=gy" : ""),
      [&] {
        Dev dx(x), dg(gamma), db(beta), dy(nans(sz)), dm(nans(ng)), dr(nans(ng)), dgy(gy), dgx(nans(sz)), dgg(gg0),
            dgb(gb0);
        ks::cuda::groupnorm_silu_forward(dx.p, dg.p, db.p, dy.p, dm.p, dr.p, s);
        float* gx = in_place ? dgy.p : dgx.p;
        ks::cuda::groupnorm_silu_backward(dx.p, dg.p, db.p, dm.p, dr.p, dgy.p, gx, dgg.p, dgb.p, s);
        return Outs{dy.get(), dm.get(), dr.get(), in_place ? dgy.get() : dgx.get(), dgg.get(), dgb.get()};
      },
      [&](Row& row, const Outs& r) {
        D u(sz), y(sz), m(ng), rs(ng), gu(sz), gx(sz), gg = dbl(gg0), gb = dbl(gb0), xd = dbl(x), gd = dbl(gamma),
                                                       bd = dbl(beta), gyd = dbl(gy);
        ks::cpu::groupnorm_forward(xd.data(), gd.data(), bd.data(), u.data(), m.data(), rs.data(), s);
        if (hw * (c / groups) == 1) {
          // One element per group: variance 0, rstd = 1/sqrt(eps), and the float form x * a + b of u cancels
          // (as in test_groupnorm); take u as the CPU's float GroupNorm forms it, the rest in double.
          V uf(sz), mf(ng), rf(ng);
          ks::cpu::groupnorm_forward(x.data(), gamma.data(), beta.data(), uf.data(), mf.data(), rf.data(), s);
          u = dbl(uf);
        }
        ks::cpu::silu_forward(u.data(), y.data(), sz);
        ks::cpu::silu_backward(u.data(), gyd.data(), gu.data(), sz);
        ks::cpu::groupnorm_backward(xd.data(), gd.data(), m.data(), rs.data(), gu.data(), gx.data(), gg.data(),
                                    gb.data(), s);
        row.near("y", r[0], y, 5e-6);
        row.near("mean", r[1], m, 2e-6);
        row.near("rstd", r[2], rs, 2e-6);
        row.near("gx", r[3], gx, 2e-5);
        row.near("ggamma", r[4], gg, 2e-6);
        row.near("gbeta", r[5], gb, 2e-6);
      });
}

// The convolution's epilogue (conv2d_forward_fused: bias + per-(n, cout) bias + residual in the store)
// against the double reference conv plus the two additions.
void test_conv_epilogue(int64_t n, int64_t cin, int64_t h, int64_t w, int64_t cout, int k, int stride, bool chan,
                        bool residual) {
  const ks::Conv2dShape s{n, cin, h, w, cout, k, stride};
  const int64_t plane = s.ho() * s.wo(), ysz = n * cout * plane, xsz = n * cin * h * w, wsz = cout * cin * k * k;
  const V x = randv(xsz), wt = randv(wsz), b = randv(cout), cb = randv(n * cout), res = randv(ysz);
  run_case(
      "conv2d epilogue",
      fmt("n%ld cin%ld %ldx%ld cout%ld k%d s%d%s%s", n, cin, h, w, cout, k, stride, chan ? " +time bias" : "",
          residual ? " +residual" : ""),
      [&] {
        Dev dx(x), dw(wt), db(b), dcb(cb), dres(res), dy(nans(ysz));
        ks::ConvEpilogue<float> e;
        e.chan_bias = chan ? dcb.p : nullptr;
        e.residual = residual ? dres.p : nullptr;
        ks::cuda::conv2d_forward_fused(dx.p, dw.p, db.p, dy.p, s, e);
        return Outs{dy.get()};
      },
      [&](Row& row, const Outs& r) {
        D y(ysz), xd = dbl(x), wd = dbl(wt), bd = dbl(b);
        ks::cpu::conv2d_forward(xd.data(), wd.data(), bd.data(), y.data(), s);
        for (int64_t i = 0; i < n * cout; ++i)
          for (int64_t p = 0; p < plane; ++p) {
            if (chan) y[i * plane + p] += cb[i];
            if (residual) y[i * plane + p] += res[i * plane + p];
          }
        row.near("y", r[0], y, 2e-6);
      });
}

void test_attention(int64_t n, int64_t c, int64_t p) {
  const V qkv = randv(n * 3 * c * p, -1.5f, 1.5f), go = randv(n * c * p);
  run_case(
      "attention", fmt("n%ld c%ld p%ld", n, c, p),
      [&] {
        Dev dq(qkv), da(nans(n * p * p)), dout(nans(n * c * p)), dgo(go), dg(nans(n * 3 * c * p));
        ks::cuda::attention_forward(dq.p, da.p, dout.p, n, c, p);
        ks::cuda::attention_backward(dq.p, da.p, dgo.p, dg.p, n, c, p);
        return Outs{da.get(), dout.get(), dg.get()};
      },
      [&](Row& row, const Outs& r) {
        D qd = dbl(qkv), a(n * p * p), o(n * c * p), god = dbl(go), g(n * 3 * c * p);
        ks::cpu::attention_forward(qd.data(), a.data(), o.data(), n, c, p);
        ks::cpu::attention_backward(qd.data(), a.data(), god.data(), g.data(), n, c, p);
        row.near("a", r[0], a, 2e-6);
        row.near("o", r[1], o, 2e-6);
        row.near("gqkv", r[2], g, 5e-6);
      });
}

void test_linear(int64_t n, int64_t in, int64_t out, bool bias, bool want_gx) {
  const V x = randv(n * in), w = randv(out * in), b = randv(out), gy = randv(n * out), gw0 = randv(out * in),
          gb0 = randv(out);
  run_case(
      "linear", fmt("n%ld in%ld out%ld%s%s", n, in, out, bias ? "" : " nobias", want_gx ? "" : " nogx"),
      [&] {
        Dev dx(x), dw(w), db(b), dy(nans(n * out)), dgy(gy), dgx(nans(n * in)), dgw(gw0), dgb(gb0);
        ks::cuda::linear_forward(dx.p, dw.p, bias ? db.p : nullptr, dy.p, n, in, out);
        ks::cuda::linear_backward(dx.p, dw.p, dgy.p, want_gx ? dgx.p : nullptr, dgw.p, bias ? dgb.p : nullptr, n, in,
                                  out);
        return Outs{dy.get(), dgx.get(), dgw.get(), dgb.get()};
      },
      [&](Row& row, const Outs& r) {
        D xd = dbl(x), wd = dbl(w), bd = dbl(b), gyd = dbl(gy), y(n * out), gx(n * in), gw = dbl(gw0), gb = dbl(gb0);
        ks::cpu::linear_forward(xd.data(), wd.data(), bias ? bd.data() : nullptr, y.data(), n, in, out);
        ks::cpu::linear_backward(xd.data(), wd.data(), gyd.data(), want_gx ? gx.data() : nullptr, gw.data(),
                                 bias ? gb.data() : nullptr, n, in, out);
        row.near("y", r[0], y, 2e-6);
        if (want_gx)
          row.near("gx", r[1], gx, 2e-6);
        else
          row.same("gx untouched (null)", r[1], nans(n * in));
        row.near("gw", r[2], gw, 2e-6);
        if (bias)
          row.near("gb", r[3], gb, 2e-6);
        else
          row.same("gb untouched (null)", r[3], gb0);
      });
}

void test_silu(int64_t n) {
  V x = randv(n, -12.f, 12.f);
  const V gy = randv(n);
  x[0] = 90.f, x[1] = -90.f, x[2] = 0.f;
  run_case(
      "silu", fmt("n%ld, x = +-90 and 0; gx aliasing gy", n),
      [&] {
        Dev dx(x), dy(nans(n)), dgy(gy), dgx(nans(n)), dal(gy);
        ks::cuda::silu_forward(dx.p, dy.p, n);
        ks::cuda::silu_backward(dx.p, dgy.p, dgx.p, n);
        ks::cuda::silu_backward(dx.p, dal.p, dal.p, n);
        return Outs{dy.get(), dgx.get(), dal.get()};
      },
      [&](Row& row, const Outs& r) {
        D xd = dbl(x), gyd = dbl(gy), y(n), gx(n);
        ks::cpu::silu_forward(xd.data(), y.data(), n);
        ks::cpu::silu_backward(xd.data(), gyd.data(), gx.data(), n);
        row.near("y", r[0], y, 2e-6);
        row.near("gx", r[1], gx, 2e-6);
        row.near("gx aliased", r[2], gx, 2e-6);
      });
}

// The worked example of docs/adding-an-op.md: a fused elementwise op, bit for bit against the CPU.
void test_silu_mul(int64_t n) {
  V a = randv(n, -12.f, 12.f);
  const V b = randv(n);
  a[0] = 90.f, a[1] = -90.f;
  run_case(
      "silu_mul", fmt("n%ld, a = +-90; out aliasing a", n),
      [&] {
        Dev da(a), db(b), out(nans(n)), al(a);
        ks::cuda::silu_mul(da.p, db.p, out.p, n);
        ks::cuda::silu_mul(al.p, db.p, al.p, n);
        return Outs{out.get(), al.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n);
        ks::cpu::silu_mul(a.data(), b.data(), want.data(), n);
        row.same("out", r[0], want);
        row.same("aliased", r[1], want);
      });
}

void test_time_embedding(int64_t c) {
  const int64_t rows = 5;
  const V t = {0.f, 1.f, 0.5f, 999.f, 537.25f};
  run_case(
      "time_embedding", fmt("t up to 999, c%ld (vs CPU float)", c),
      [&] {
        Dev dt(t), de(V(rows * c, -3.f));
        ks::cuda::time_embedding(dt.p, de.p, rows, c);
        return Outs{de.get()};
      },
      [&](Row& row, const Outs& r) {
        // The CPU's float instantiation, which the golden test compares with: bit equality expected.
        V want(rows * c, -3.f);
        ks::cpu::time_embedding(t.data(), want.data(), rows, c);
        row.same("emb", r[0], want);
      });
}

void test_upsample(int64_t planes, int64_t h, int64_t w) {
  const V x = randv(planes * h * w), g = randv(planes * 4 * h * w);
  run_case(
      "upsample2", fmt("%ld planes %ldx%ld", planes, h, w),
      [&] {
        Dev dx(x), dy(nans(planes * 4 * h * w)), dg(g), dgx(nans(planes * h * w));
        ks::cuda::upsample2_forward(dx.p, dy.p, planes, h, w);
        ks::cuda::upsample2_backward(dg.p, dgx.p, planes, h, w);
        return Outs{dy.get(), dgx.get()};
      },
      [&](Row& row, const Outs& r) {
        V y(planes * 4 * h * w), gx(planes * h * w);
        ks::cpu::upsample2_forward(x.data(), y.data(), planes, h, w);
        ks::cpu::upsample2_backward(g.data(), gx.data(), planes, h, w);
        row.same("y", r[0], y);
        row.same("gx", r[1], gx);
      });
}

void test_graph_ops(int64_t hw) {
  const int64_t n = 3, c = 5, ca = 2, cb = 3;
  const V a = randv(n * c * hw), b = randv(n * c * hw), bias = randv(n * c), xa = randv(n * ca * hw),
          xb = randv(n * cb * hw);
  run_case(
      "graph_ops", fmt("add, channel bias/sums, concat, split: hw%ld", hw),
      [&] {
        Dev da(a), db(b), dbias(bias), dsum(nans(n * c)), dxa(xa), dxb(xb), dcat(nans(n * (ca + cb) * hw)),
            dsa(nans(n * ca * hw)), dsb(nans(n * cb * hw)), dx2(a);
        ks::cuda::add_inplace(da.p, db.p, n * c * hw);
        ks::cuda::add_channel_bias(dx2.p, dbias.p, n, c, hw);
        ks::cuda::channel_sums(db.p, dsum.p, n, c, hw);
        ks::cuda::concat_channels(dxa.p, dxb.p, dcat.p, n, ca, cb, hw);
        ks::cuda::split_channels(dcat.p, dsa.p, dsb.p, n, ca, cb, hw);
        return Outs{da.get(), dx2.get(), dsum.get(), dcat.get(), dsa.get(), dsb.get()};
      },
      [&](Row& row, const Outs& r) {
        // The CPU UNet's own loops for these (native/cpu/unet.h), written out.
        V add(n * c * hw), cbias(n * c * hw), cat;
        D sums(n * c, 0.0);
        for (int64_t i = 0; i < n * c * hw; ++i) {
          add[i] = a[i] + b[i];
          cbias[i] = a[i] + bias[i / hw];
          sums[i / hw] += b[i];
        }
        for (int64_t s = 0; s < n; ++s) {
          cat.insert(cat.end(), xa.begin() + s * ca * hw, xa.begin() + (s + 1) * ca * hw);
          cat.insert(cat.end(), xb.begin() + s * cb * hw, xb.begin() + (s + 1) * cb * hw);
        }
        row.same("add_inplace", r[0], add);
        row.same("add_channel_bias", r[1], cbias);
        row.near("channel_sums", r[2], sums, 2e-6);
        row.same("concat_channels", r[3], cat);
        row.same("split_channels a", r[4], xa);
        row.same("split_channels b", r[5], xb);
      });
}

// ---- the emulator itself: shuffles give CUDA's values, and the errors it promises are reported ---------

__global__ void self_shuffles(float* out, int width) {
  const int t = threadIdx.x;
  const float v = 100.0f + t;
  out[4 * t + 0] = __shfl_sync(0xffffffffu, v, 3, width);
  out[4 * t + 1] = __shfl_up_sync(0xffffffffu, v, 2, width);
  out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, 5, width);
  out[4 * t + 3] = __shfl_xor_sync(0xffffffffu, v, 9, width);
}
__global__ void self_divergent_barrier() {
  if (threadIdx.x < 40) __syncthreads();
}
__global__ void self_mask_without_caller() { (void)__shfl_down_sync(0x0000ffffu, 1.0, 1); }
__global__ void self_lanes_skip_shuffle() {
  if (threadIdx.x % 32 < 16) (void)__shfl_down_sync(0xffffffffu, 1.0f, 1);
  __syncthreads();
}
__global__ void self_race(float* out) {  // reads a neighbour's shared value without a barrier
  __shared__ float buf[64];
  buf[threadIdx.x] = 1.0f + threadIdx.x;
  out[threadIdx.x] = buf[(threadIdx.x + 1) % 64];
}

void test_emulator() {
  for (int width : {32, 8}) {
    run_case(
        "(emulator)", fmt("shfl idx/up/down/xor, width %d, 64 threads", width),
        [&] {
          Dev out(nans(4 * 64));
          emu_launch(emu_config(1, 64), "self_shuffles", self_shuffles, out.p, width);
          return Outs{out.get()};
        },
        [&](Row& row, const Outs& r) {
          V want(4 * 64);
          for (int t = 0; t < 64; ++t) {
            const int lane = t % 32, warp0 = t - lane, base = lane / width * width;
            auto v = [&](int l) { return 100.0f + warp0 + l; };
            want[4 * t + 0] = v(base + 3 % width);
            want[4 * t + 1] = lane - base >= 2 ? v(lane - 2) : v(lane);
            want[4 * t + 2] = lane - base + 5 < width ? v(lane + 5) : v(lane);
            want[4 * t + 3] = (lane ^ 9) < base + width ? v(lane ^ 9) : v(lane);
          }
          row.same("values", r[0], want);
        });
  }
  struct Expect {
    const char* name;
    std::function<void()> launch;
    const char* message;
  };
  const Expect errors[] = {
      {"__syncthreads skipped by some threads",
       [] { emu_launch(emu_config(1, 64), "self_divergent_barrier", self_divergent_barrier); }, "divergence"},
      {"shuffle mask without the caller",
       [] { emu_launch(emu_config(1, 32), "self_mask_without_caller", self_mask_without_caller); }, "does not name it"},
      {"lanes named in the mask skip the shuffle",
       [] { emu_launch(emu_config(1, 64), "self_lanes_skip_shuffle", self_lanes_skip_shuffle); }, "at __syncthreads"},
  };
  for (const Expect& e : errors) {
    Row row("(emulator)", std::string("reports: ") + e.name);
    row.summary = true;
    try {
      e.launch();
      row.fail("no error reported");
    } catch (const EmuError& err) {
      if (!strstr(err.what(), e.message)) row.fail(std::string("unexpected report: ") + err.what());
    }
    row.print(0);
  }
  {
    Row row("(emulator)", "reports: a race between barriers (thread orders)");
    row.summary = true;
    Outs runs;
    for (int o : {kEmuForward, kEmuReverse}) {
      emu_order = o;
      Dev out(nans(64));
      emu_launch(emu_config(1, 64), "self_race", self_race, out.p);
      runs.push_back(out.get());
    }
    emu_order = kEmuForward;
    if (!memcmp(runs[0].data(), runs[1].data(), 64 * sizeof(float))) row.fail("the orders gave the same result");
    row.print(0);
  }
  {
    Row row("(emulator)", "reports: a launch of 2048 threads per block");
    row.summary = true;
    cudaGetLastError();
    emu_launch(emu_config(1, 2048), "self_race", self_race, static_cast<float*>(nullptr));
    if (cudaGetLastError() != cudaErrorInvalidConfiguration) row.fail("no launch error");
    row.print(0);
  }
}

// ---- GSURE kernels (kintsugi/gsure.h) -------------------------------------------------------------

// v in [0, 0.02] with every third coordinate unobserved (0); coef = (√ᾱ, ᾱ, 1 − ᾱ), one sample at D = 0.
V gsure_variances(int64_t count) {
  V v = randv(count, 0.0f, 0.02f);
  for (int64_t i = 2; i < count; i += 3) v[i] = 0;
  return v;
}

void test_svd_noise(int64_t n, int64_t per, bool shared) {
  const V y = randv(n * per, -2.f, 2.f), v = gsure_variances(shared ? per : n * per);
  V coef(3 * n);
  for (int64_t b = 0; b < n; ++b) {
    const double ab = b == 0 ? 1 / 1.02 : 0.05 + 0.9 * double(b) / n;
    coef[3 * b] = float(std::sqrt(ab)), coef[3 * b + 1] = float(ab), coef[3 * b + 2] = float(1 - ab);
  }
  const ks::RngKey key{0x1234abcdull, 77, 5};
  const int64_t stride = shared ? 0 : per;
  run_case(
      "svd_noise", fmt("n%ld x %ld%s", n, per, shared ? ", v shared" : ""),
      [&] {
        Dev dy(y), dv(v), dc(coef), out(nans(n * per));
        ks::cuda::svd_noise(dy.p, dv.p, stride, dc.p, n, per, key, out.p);
        return Outs{out.get()};
      },
      [&](Row& row, const Outs& r) {
        V want(n * per);
        ks::cpu::svd_noise(y.data(), v.data(), stride, coef.data(), n, per, key, want.data());
        row.same("out", r[0], want);
      });
}

void test_gsure_probe(int64_t n, int64_t per, int probes, bool central) {
  const V x = randv(n * per, -2.f, 2.f);
  const ks::RngKey key{99, 0xfffffffeull, 2};
  const int64_t m = n * probes * per;
  run_case(
      "gsure_probe", fmt("n%ld x %ld, %d probes%s", n, per, probes, central ? ", central" : ""),
      [&] {
        Dev dx(x), plus(nans(m)), minus(nans(m));
        ks::cuda::gsure_probe(dx.p, n, per, probes, 0.01f, key, plus.p, central ? minus.p : nullptr);
        return Outs{plus.get(), minus.get()};
      },
      [&](Row& row, const Outs& r) {
        V plus(m), minus(m, NAN);
        ks::cpu::gsure_probe(x.data(), n, per, probes, 0.01f, key, plus.data(), central ? minus.data() : nullptr);
        row.same("plus", r[0], plus);
        row.same(central ? "minus" : "minus untouched", r[1], minus);
      });
}

void test_gsure_terms(int64_t n, int64_t per, int probes, bool central, bool shared) {
  const int64_t m = n * probes * per, cvn = shared ? per : n * per;
  const V h = randv(n * per), y = randv(n * per), c = randv(cvn, 0.f, 3.f), v = gsure_variances(cvn),
          kappa = randv(n, 0.1f, 2.f);
  V plus = randv(m, -0.01f, 0.01f), minus = randv(m, -0.01f, 0.01f);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t e = (i / per / probes) * per + i % per;
    plus[i] += h[e], minus[i] += h[e];
  }
  ks::GsureTermsArgs a;
  a.cv_stride = shared ? 0 : per;
  a.n = n, a.per_sample = per, a.probes = probes, a.eps = 0.01f, a.grad_scale = 0.5f;
  a.probe_key = ks::RngKey{5, 123, 9};
  run_case(
      "gsure_terms",
      fmt("n%ld x %ld, %d probes, %s%s", n, per, probes, central ? "central" : "forward", shared ? ", c v shared" : ""),
      [&] {
        Dev dh(h), dp(plus), dm(minus), dy(y), dc(c), dv(v), dk(kappa), parts(nans(2 * n)), gh(nans(n * per)),
            gp(nans(m)), gm(nans(m));
        ks::GsureTermsArgs d = a;
        d.h = dh.p, d.plus = dp.p, d.minus = central ? dm.p : nullptr, d.ybar = dy.p, d.c = dc.p, d.v = dv.p,
        d.kappa = dk.p;
        d.parts = parts.p, d.grad_h = gh.p, d.grad_plus = gp.p, d.grad_minus = central ? gm.p : nullptr;
        ks::cuda::gsure_terms(d);
        return Outs{parts.get(), gh.get(), gp.get(), gm.get()};
      },
      [&](Row& row, const Outs& r) {
        V parts(2 * n), gh(n * per), gp(m), gm(m, NAN);
        ks::GsureTermsArgs d = a;
        d.h = h.data(), d.plus = plus.data(), d.minus = central ? minus.data() : nullptr, d.ybar = y.data(),
        d.c = c.data(), d.v = v.data(), d.kappa = kappa.data();
        d.parts = parts.data(), d.grad_h = gh.data(), d.grad_plus = gp.data(),
        d.grad_minus = central ? gm.data() : nullptr;
        ks::cpu::gsure_terms(d);
        row.near("parts", r[0], dbl(parts), 1e-6);  // double sums in another order
        row.same("grad_h", r[1], gh);
        row.same("grad_plus", r[2], gp);
        row.same(central ? "grad_minus" : "grad_minus untouched", r[3], gm);
      });
}

#include "bootstrap_cases.inc"
#include "firstlight_cases.inc"
#include "tensorcore_cases.inc"
#include "gn_split_cases.inc"
#include "unet_cases.inc"
#include "stage_profile_cases.inc"

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // rows reach the log even if a sanitizer aborts the run
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--checksums" && i + 1 < argc) {
      checksums = fopen(argv[++i], "w");
      if (!checksums) return perror(argv[i]), 2;
    } else {
      fprintf(stderr, "usage: %s [--checksums FILE]\n", argv[0]);
      return 2;
    }
  }
  printf("%-15s %-50s %-9s %-7s %-6s %-4s %s\n", "kernel", "case", "max err", "tol", "orders", "SMs", "result");

  // KS_EMU_ONLY=group[,group...] runs only those groups (emulator, mma, ops, firstlight, tensorcore,
  // fused, folds, unet), for work on one kernel; the coverage row is then skipped, so a filtered run is never a
  // full pass.
  const char* only = std::getenv("KS_EMU_ONLY");
  auto selected = [&](const char* group) {
    if (only == nullptr) return true;
    const std::string list = std::string(",") + only + ",";
    return list.find(std::string(",") + group + ",") != std::string::npos;
  };
  if (selected("emulator")) test_emulator();
  if (selected("mma")) test_mma_wrapper();  // the warp-level wrapper alone, before the kernels that use it (issue #13)
  // Every op's cases, in the order of the golden table test/golden/ops.json (run.sh generates cases.inc
  // from it with cases.mjs): an op added to the registry adds its emulator calls there.
  if (selected("ops")) {
#include "cases.inc"
  }
  // Issue #11's fixes (capped conv2d weight scratch, unaligned random views, the stream rule).
  if (selected("firstlight")) test_firstlight();
  // Issue #13: conv2d on tensor cores (BF16, TF32), odd sizes and the presets' shapes.
  if (selected("tensorcore")) test_tensorcore();
  // Issue #13: the fused block (GroupNorm + SiLU prologue, epilogue, upsample and concat gathers).
  if (selected("fused")) test_tc_fused_all();
  // Issue #13 item 3: the folds (GroupNorm statistics from the conv's epilogue, groupnorm_silu's folded backward).
  if (selected("folds")) test_folds_all(), test_gn_split_input_all();  // + the split input (wire3)
  // Issue #13: the whole UNet through the CUDA executor (the fused block wired into the graph).
  if (selected("unet")) test_unet_all(), test_unet_stage_profile();  // + the stage profiler (item 6)

  // Every __global__ function in the compiled sources must have been launched by some case above.
  if (only != nullptr) {
    printf("(coverage)      skipped: KS_EMU_ONLY=%s\n", only);
  } else {
    Row row("(coverage)", "");
    row.summary = true;
    int launched = 0;
    for (const char* k : kKernels) {
      if (emu_launch_count(k) > 0)
        ++launched;
      else
        row.fail(std::string("kernel ") + k + " was never launched: add a case");
    }
    row.name = fmt("%d of %zu kernels launched", launched, sizeof kKernels / sizeof *kKernels);
    row.print(0);
  }
  {
    Row row("(allocator)",
            fmt("%ld scratch blocks, %ld live at the end", emu_total_allocations(), emu_live_allocations()));
    row.summary = true;
    if (emu_live_allocations() != 0) row.fail("scratch leaked");
    row.print(0);
  }
  printf(
      "max err: max |out - ref| / max(max |ref|, 1) over the case's outputs (sum: relative to |ref|); exact: bit\n"
      "for bit. orders: bit-identical under forward, reverse and shuffled thread and block order. SMs: bit-identical\n"
      "with the grids grid_for picks for 7 SMs instead of 1 (no*: differs, allowed where marked).\n");
  printf("launches %ld, block barriers %ld, warp shuffles %ld\n", emu_launches, emu_barriers, emu_shuffles);
  if (checksums) fclose(checksums);
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
