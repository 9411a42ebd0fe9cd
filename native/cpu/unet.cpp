#include "unet.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include "attention.h"
#include "conv2d.h"
#include "groupnorm.h"
#include "linear.h"
#include "silu.h"
#include "time_embedding.h"
#include "upsample.h"

namespace ks::cpu {

namespace {
template <class T>
using Buf = std::vector<T>;

template <class T>
Buf<T> buf(int64_t n) {
  return Buf<T>(static_cast<size_t>(n));
}
}  // namespace

template <class T>
UNetCpu<T>::UNetCpu(const UNetConfig& config) : plan_(unet_plan(config)) {}

template <class T>
UNetCpu<T>::~UNetCpu() = default;

namespace {

template <class T>
void conv_fwd(const T* P, const UNetPlan::Conv& c, const T* x, T* y, int64_t n, int64_t size) {
  conv2d_forward(x, P + c.w, P + c.b, y, Conv2dShape{n, c.cin, size, size, c.cout, c.k, c.stride});
}

template <class T>
void conv_bwd(const T* P, const UNetPlan::Conv& c, const T* x, const T* gy, T* gx, T* G, int64_t n, int64_t size) {
  conv2d_backward(x, P + c.w, gy, gx, G + c.w, G + c.b, Conv2dShape{n, c.cin, size, size, c.cout, c.k, c.stride});
}

template <class T>
void norm_fwd(const T* P, const UNetPlan::Norm& m, const T* x, T* y, Buf<T>& mean, Buf<T>& rstd, int64_t n, int64_t hw) {
  mean.resize(static_cast<size_t>(n * m.groups));
  rstd.resize(static_cast<size_t>(n * m.groups));
  groupnorm_forward(x, P + m.w, P + m.b, y, mean.data(), rstd.data(), GroupNormShape{n, m.c, hw, m.groups});
}

template <class T>
void norm_bwd(const T* P, const UNetPlan::Norm& m, const T* x, const Buf<T>& mean, const Buf<T>& rstd, const T* gy, T* gx,
              T* G, int64_t n, int64_t hw) {
  groupnorm_backward(x, P + m.w, mean.data(), rstd.data(), gy, gx, G + m.w, G + m.b, GroupNormShape{n, m.c, hw, m.groups});
}

template <class T>
Buf<T> silu_of(const Buf<T>& x) {
  Buf<T> y(x.size());
  silu_forward(x.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

template <class T>
void add_into(Buf<T>& a, const Buf<T>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

}  // namespace

template <class T>
std::unique_ptr<typename UNetCpu<T>::Tape> UNetCpu<T>::forward(const T* P, const T* x, const T* t, int64_t n,
                                                               T* out) const {
  const UNetConfig& cfg = plan_.config;
  const int64_t C = cfg.channels, TC = 4 * C, R = cfg.resolution;
  auto tape = std::make_unique<Tape>();
  tape->n = n;
  tape->x.assign(x, x + n * cfg.in_channels * R * R);

  // Time path: emb -> linear1 -> silu -> linear2 = temb; each ResBlock projects silu(temb).
  tape->emb = buf<T>(n * C);
  time_embedding(t, tape->emb.data(), n, C);
  tape->l1 = buf<T>(n * TC);
  linear_forward(tape->emb.data(), P + plan_.time1.w, P + plan_.time1.b, tape->l1.data(), n, C, TC);
  Buf<T> s1 = silu_of(tape->l1);
  tape->temb = buf<T>(n * TC);
  linear_forward(s1.data(), P + plan_.time2.w, P + plan_.time2.b, tape->temb.data(), n, TC, TC);
  tape->st = silu_of(tape->temb);

  tape->h0 = buf<T>(n * C * R * R);
  conv_fwd(P, plan_.conv_in, x, tape->h0.data(), n, R);
  std::vector<const Buf<T>*> skips{&tape->h0};
  Buf<T> h = tape->h0;
  tape->stages.resize(plan_.stages.size());

  for (size_t si = 0; si < plan_.stages.size(); ++si) {
    const UNetPlan::Stage& st = plan_.stages[si];
    auto& s = tape->stages[si];
    const int64_t size = st.size, hw = size * size;
    if (st.concat_before) {
      const Buf<T>& skip = *skips.back();
      skips.pop_back();
      const int64_t c2 = st.skip_c, c1 = st.cin - c2;
      s.in = buf<T>(n * st.cin * hw);
      for (int64_t b = 0; b < n; ++b) {
        std::copy_n(h.data() + b * c1 * hw, c1 * hw, s.in.data() + b * st.cin * hw);
        std::copy_n(skip.data() + b * c2 * hw, c2 * hw, s.in.data() + b * st.cin * hw + c1 * hw);
      }
    } else {
      s.in = std::move(h);
    }
    switch (st.kind) {
      case UNetPlan::Kind::Res: {
        const auto& r = plan_.res[static_cast<size_t>(st.index)];
        s.u1 = buf<T>(n * st.cin * hw);
        norm_fwd(P, r.norm1, s.in.data(), s.u1.data(), s.mean1, s.rstd1, n, hw);
        s.a1 = silu_of(s.u1);
        s.h = buf<T>(n * st.cout * hw);
        conv_fwd(P, r.conv1, s.a1.data(), s.h.data(), n, size);
        Buf<T> tp = buf<T>(n * st.cout);
        linear_forward(tape->st.data(), P + r.time.w, P + r.time.b, tp.data(), n, TC, st.cout);
        for (int64_t b = 0; b < n; ++b)
          for (int64_t c = 0; c < st.cout; ++c)
            for (int64_t p = 0; p < hw; ++p) s.h[(b * st.cout + c) * hw + p] += tp[b * st.cout + c];
        s.u2 = buf<T>(n * st.cout * hw);
        norm_fwd(P, r.norm2, s.h.data(), s.u2.data(), s.mean2, s.rstd2, n, hw);
        s.a2 = silu_of(s.u2);
        h = buf<T>(n * st.cout * hw);
        conv_fwd(P, r.conv2, s.a2.data(), h.data(), n, size);
        if (r.has_skip) {
          Buf<T> sk = buf<T>(n * st.cout * hw);
          conv_fwd(P, r.skip, s.in.data(), sk.data(), n, size);
          add_into(h, sk);
        } else {
          add_into(h, s.in);
        }
        break;
      }
      case UNetPlan::Kind::Attn: {
        const auto& a = plan_.attn[static_cast<size_t>(st.index)];
        s.u1 = buf<T>(n * a.c * hw);
        norm_fwd(P, a.norm, s.in.data(), s.u1.data(), s.mean1, s.rstd1, n, hw);
        s.qkv = buf<T>(n * 3 * a.c * hw);
        conv_fwd(P, a.qkv, s.u1.data(), s.qkv.data(), n, size);
        s.attn = buf<T>(n * hw * hw);
        s.o = buf<T>(n * a.c * hw);
        attention_forward(s.qkv.data(), s.attn.data(), s.o.data(), n, a.c, hw);
        h = buf<T>(n * a.c * hw);
        conv_fwd(P, a.proj, s.o.data(), h.data(), n, size);
        add_into(h, s.in);
        break;
      }
      case UNetPlan::Kind::Down: {
        const auto& c = plan_.resample[static_cast<size_t>(st.index)];
        h = buf<T>(n * c.cout * hw / 4);
        conv_fwd(P, c, s.in.data(), h.data(), n, size);
        break;
      }
      case UNetPlan::Kind::Up: {
        const auto& c = plan_.resample[static_cast<size_t>(st.index)];
        s.up = buf<T>(n * c.cin * hw * 4);
        upsample2_forward(s.in.data(), s.up.data(), n * c.cin, size, size);
        h = buf<T>(n * c.cout * hw * 4);
        conv_fwd(P, c, s.up.data(), h.data(), n, 2 * size);
        break;
      }
    }
    if (st.push_after) {
      s.pushed = h;
      skips.push_back(&s.pushed);
    }
  }

  // Output head: out.conv(silu(out.norm(h))).
  const int64_t hw = R * R;
  tape->hout = std::move(h);
  tape->uout = buf<T>(n * plan_.out_norm.c * hw);
  norm_fwd(P, plan_.out_norm, tape->hout.data(), tape->uout.data(), tape->mout, tape->rout, n, hw);
  tape->aout = silu_of(tape->uout);
  conv_fwd(P, plan_.out_conv, tape->aout.data(), out, n, R);
  return tape;
}

template <class T>
void UNetCpu<T>::backward(const T* P, const Tape& tape, const T* gout, T* G, T* gx) const {
  const UNetConfig& cfg = plan_.config;
  const int64_t n = tape.n, C = cfg.channels, TC = 4 * C, R = cfg.resolution, HW = R * R;
  Buf<T> g_st = buf<T>(n * TC);  // dL/d silu(temb), summed over every ResBlock

  // Output head.
  Buf<T> g = buf<T>(n * plan_.out_norm.c * HW);
  conv_bwd(P, plan_.out_conv, tape.aout.data(), gout, g.data(), G, n, R);
  silu_backward(tape.uout.data(), g.data(), g.data(), static_cast<int64_t>(g.size()));
  Buf<T> gh = buf<T>(static_cast<int64_t>(g.size()));
  norm_bwd(P, plan_.out_norm, tape.hout.data(), tape.mout, tape.rout, g.data(), gh.data(), G, n, HW);
  g = std::move(gh);

  std::vector<Buf<T>> gskips;  // gradients of the skips, in the order the up path popped them
  for (size_t si = plan_.stages.size(); si-- > 0;) {
    const UNetPlan::Stage& st = plan_.stages[si];
    const auto& s = tape.stages[si];
    const int64_t size = st.size, hw = size * size;
    if (st.push_after) {
      add_into(g, gskips.back());
      gskips.pop_back();
    }
    Buf<T> gin = buf<T>(n * st.cin * hw);
    switch (st.kind) {
      case UNetPlan::Kind::Res: {
        const auto& r = plan_.res[static_cast<size_t>(st.index)];
        // skip path
        if (r.has_skip) {
          conv_bwd(P, r.skip, s.in.data(), g.data(), gin.data(), G, n, size);
        } else {
          gin = g;
        }
        // conv2 <- silu <- norm2
        Buf<T> ga = buf<T>(n * st.cout * hw);
        conv_bwd(P, r.conv2, s.a2.data(), g.data(), ga.data(), G, n, size);
        silu_backward(s.u2.data(), ga.data(), ga.data(), static_cast<int64_t>(ga.size()));
        Buf<T> gh1 = buf<T>(n * st.cout * hw);
        norm_bwd(P, r.norm2, s.h.data(), s.mean2, s.rstd2, ga.data(), gh1.data(), G, n, hw);
        // time projection: dL/dtp[b, c] = sum over pixels
        Buf<T> gtp = buf<T>(n * st.cout);
        for (int64_t b = 0; b < n; ++b)
          for (int64_t c = 0; c < st.cout; ++c) {
            T acc = 0;
            for (int64_t p = 0; p < hw; ++p) acc += gh1[(b * st.cout + c) * hw + p];
            gtp[b * st.cout + c] = acc;
          }
        Buf<T> gst = buf<T>(n * TC);
        linear_backward(tape.st.data(), P + r.time.w, gtp.data(), gst.data(), G + r.time.w, G + r.time.b, n, TC, st.cout);
        add_into(g_st, gst);
        // conv1 <- silu <- norm1
        Buf<T> ga1 = buf<T>(n * st.cin * hw);
        conv_bwd(P, r.conv1, s.a1.data(), gh1.data(), ga1.data(), G, n, size);
        silu_backward(s.u1.data(), ga1.data(), ga1.data(), static_cast<int64_t>(ga1.size()));
        Buf<T> gx1 = buf<T>(n * st.cin * hw);
        norm_bwd(P, r.norm1, s.in.data(), s.mean1, s.rstd1, ga1.data(), gx1.data(), G, n, hw);
        add_into(gin, gx1);
        break;
      }
      case UNetPlan::Kind::Attn: {
        const auto& a = plan_.attn[static_cast<size_t>(st.index)];
        Buf<T> go = buf<T>(n * a.c * hw);
        conv_bwd(P, a.proj, s.o.data(), g.data(), go.data(), G, n, size);
        Buf<T> gqkv = buf<T>(n * 3 * a.c * hw);
        attention_backward(s.qkv.data(), s.attn.data(), go.data(), gqkv.data(), n, a.c, hw);
        Buf<T> gu = buf<T>(n * a.c * hw);
        conv_bwd(P, a.qkv, s.u1.data(), gqkv.data(), gu.data(), G, n, size);
        norm_bwd(P, a.norm, s.in.data(), s.mean1, s.rstd1, gu.data(), gin.data(), G, n, hw);
        add_into(gin, g);  // the residual
        break;
      }
      case UNetPlan::Kind::Down: {
        conv_bwd(P, plan_.resample[static_cast<size_t>(st.index)], s.in.data(), g.data(), gin.data(), G, n, size);
        break;
      }
      case UNetPlan::Kind::Up: {
        const auto& c = plan_.resample[static_cast<size_t>(st.index)];
        Buf<T> gup = buf<T>(n * c.cin * hw * 4);
        conv_bwd(P, c, s.up.data(), g.data(), gup.data(), G, n, 2 * size);
        upsample2_backward(gup.data(), gin.data(), n * c.cin, size, size);
        break;
      }
    }
    if (st.concat_before) {
      // Split the input gradient: current activation first, then the skip.
      const int64_t cskip = st.skip_c, c1 = st.cin - cskip;
      Buf<T> gcur = buf<T>(n * c1 * hw), gskip = buf<T>(n * cskip * hw);
      for (int64_t b = 0; b < n; ++b) {
        std::copy_n(gin.data() + b * st.cin * hw, c1 * hw, gcur.data() + b * c1 * hw);
        std::copy_n(gin.data() + b * st.cin * hw + c1 * hw, cskip * hw, gskip.data() + b * cskip * hw);
      }
      gskips.push_back(std::move(gskip));
      g = std::move(gcur);
    } else {
      g = std::move(gin);
    }
  }

  // conv_in pushed its output first: its skip gradient is the last one left.
  add_into(g, gskips.back());
  gskips.pop_back();
  Buf<T> gxin = buf<T>(n * cfg.in_channels * HW);
  conv_bwd(P, plan_.conv_in, tape.x.data(), g.data(), gx ? gxin.data() : nullptr, G, n, R);
  if (gx) std::copy(gxin.begin(), gxin.end(), gx);

  // Time path: silu(temb) <- linear2 <- silu <- linear1 (no gradient flows to t).
  Buf<T> gtemb = buf<T>(n * TC);
  silu_backward(tape.temb.data(), g_st.data(), gtemb.data(), n * TC);
  Buf<T> s1 = silu_of(tape.l1);
  Buf<T> gs1 = buf<T>(n * TC);
  linear_backward(s1.data(), P + plan_.time2.w, gtemb.data(), gs1.data(), G + plan_.time2.w, G + plan_.time2.b, n, TC, TC);
  silu_backward(tape.l1.data(), gs1.data(), gs1.data(), n * TC);
  linear_backward(tape.emb.data(), P + plan_.time1.w, gs1.data(), static_cast<T*>(nullptr), G + plan_.time1.w,
                  G + plan_.time1.b, n, C, TC);
}

template class UNetCpu<float>;
template class UNetCpu<double>;

}  // namespace ks::cpu
