// Per-stage timing of the UNet graph (issue #13 item 6): the graph (unet_graph.h) calls
// StageTimer::mark at the boundaries of each stage of one forward and one backward, when a timer is
// passed to that call; without one (every training step, sampling) it is a null-pointer check and nothing
// else. The timer is an object of the call, not a global: two networks (or two engines on two devices)
// profiling at once never share one. A backend supplies the clock (stamp / elapsed_ms): the CPU engine
// std::chrono (its ops are synchronous), the CUDA engine a cudaEvent per mark recorded on the device's
// stream (cuda/unet.cu), so an interval holds the stage's kernels and the launch gaps between them.
//
// Entries, in forward order: 0 the time path (embedding, linear1, SiLU, linear2, SiLU), 1 conv_in,
// 2 .. 2 + S - 1 the plan's stages (UNetPlan::stages: the down path's ResBlocks, attentions and
// Downsamples, the three mid stages, the up path's), 2 + S the output head (GroupNorm + SiLU + conv).
// Backward visits them in reverse: head, stages S-1 .. 0, conv_in, time path.
#pragma once
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace ks {

enum class StagePhase { Forward = 0, Backward = 1 };

// One mark: the boundary (begin or end) of an entry in a phase.
struct StageMark {
  int entry = 0;
  StagePhase phase = StagePhase::Forward;
  bool begin = true;
};

// What one profiled forward + backward gives: per entry the forward and backward interval in ms, and
// the marks in the order the graph made them (the emulator's row checks that order).
struct StageTimes {
  std::vector<double> fwd_ms, bwd_ms;
  std::vector<StageMark> marks;
};

class StageTimer {
 public:
  virtual ~StageTimer() = default;
  StageTimer() = default;
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

  void mark(int entry, StagePhase phase, bool begin) {
    marks_.push_back(StageMark{entry, phase, begin});
    stamp(marks_.size() - 1);
  }
  const std::vector<StageMark>& marks() const { return marks_; }

  // The number of entries of a network with `stages` plan stages: time path, conv_in, stages, head.
  static int entries_for(size_t stages) { return static_cast<int>(stages) + 3; }

  // After the profiled forward and backward: each entry's intervals. Throws std::logic_error unless the
  // marks are exactly one begin/end pair per entry and phase, forward in entry order then backward in
  // reverse order (a graph that skipped or repeated a stage, or nested two), and unless every interval
  // is finite and >= 0.
  StageTimes result(int entries) {
    StageTimes r;
    r.fwd_ms.assign(static_cast<size_t>(entries), 0.0);
    r.bwd_ms.assign(static_cast<size_t>(entries), 0.0);
    if (marks_.size() != static_cast<size_t>(4 * entries))
      throw std::logic_error("stage timer: expected " + std::to_string(4 * entries) + " marks for " +
                             std::to_string(entries) + " stages, got " + std::to_string(marks_.size()));
    for (size_t k = 0; k < marks_.size(); k += 2) {
      const size_t pair = k / 2;
      const bool fwd = pair < static_cast<size_t>(entries);
      const int want = fwd ? static_cast<int>(pair) : entries - 1 - static_cast<int>(pair - entries);
      const StagePhase phase = fwd ? StagePhase::Forward : StagePhase::Backward;
      const StageMark& b = marks_[k];
      const StageMark& e = marks_[k + 1];
      if (b.entry != want || e.entry != want || b.phase != phase || e.phase != phase || !b.begin || e.begin)
        throw std::logic_error("stage timer: mark " + std::to_string(k) + " out of order (expected stage " +
                               std::to_string(want) + (fwd ? " forward" : " backward") + ")");
      const double ms = elapsed_ms(k, k + 1);
      if (!std::isfinite(ms) || ms < 0)
        throw std::logic_error("stage timer: stage " + std::to_string(want) + " has interval " + std::to_string(ms));
      (fwd ? r.fwd_ms : r.bwd_ms)[static_cast<size_t>(want)] = ms;
    }
    r.marks = marks_;
    return r;
  }

 protected:
  // Records the time of mark i (the clock's own handle, kept by the backend).
  virtual void stamp(size_t i) = 0;
  // Milliseconds from mark a to mark b, once the work before b has finished (a CUDA timer waits here).
  virtual double elapsed_ms(size_t a, size_t b) = 0;

 private:
  std::vector<StageMark> marks_;
};

// Calls t->mark when a timer was passed: the graph's only cost without one is this test.
inline void stage_mark(StageTimer* t, int entry, StagePhase phase, bool begin) {
  if (t != nullptr) t->mark(entry, phase, begin);
}

}  // namespace ks
