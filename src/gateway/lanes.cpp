#include "floodgate/gateway/lanes.hpp"

#include <algorithm>
#include <iterator>
#include <set>

#include "floodgate/core/error.hpp"

namespace floodgate::gateway {

std::vector<LaneConfig> default_lanes() {
  return {LaneConfig{"interactive", 256, std::chrono::seconds(30), 0},
          LaneConfig{"batch", 10'000, std::chrono::minutes(10), 100}};
}

std::string_view to_string(RefusalReason reason) noexcept {
  return reason == RefusalReason::queue_full ? "queue_full" : "deadline";
}

Lanes::Lanes(std::vector<LaneConfig> lanes, Duration rate_window) : rate_window_(rate_window) {
  if (lanes.empty()) throw Error("the gateway needs at least one lane");
  if (rate_window <= Duration::zero()) throw Error("the lanes' rate window must be above zero");
  std::set<std::string, std::less<>> names;
  std::uint32_t shares = 0;
  for (auto& config : lanes) {
    if (config.name.empty()) throw Error("a lane needs a name");
    if (!names.insert(config.name).second) throw Error("two lanes are named '" + config.name + "'");
    if (config.max_queued == 0) throw Error("lane '" + config.name + "': its queue must hold at least 1 request");
    if (config.max_wait <= Duration::zero()) throw Error("lane '" + config.name + "': its wait must be above zero");
    shares += config.min_share_permille;
    if (shares > 1000) throw Error("the lanes' minimum shares add up to more than 100%");
    Lane lane;
    lane.stats.name = config.name;
    lane.stats.wait_bucket_counts.assign(std::size(kWaitBucketsSeconds) + 1, 0);
    lane.config = std::move(config);
    lanes_.push_back(std::move(lane));
  }
}

std::optional<std::size_t> Lanes::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i].config.name == name) return i;
  }
  return std::nullopt;
}

std::string Lanes::names() const {
  std::string out;
  for (const auto& lane : lanes_) {
    if (!out.empty()) out += ", ";
    out += lane.config.name;
  }
  return out;
}

std::optional<Refusal> Lanes::enqueue(TicketId id, std::size_t lane_index, TimePoint now, RoomId room) {
  Lane& lane = lanes_.at(lane_index);
  if (lane.depth >= lane.config.max_queued) {
    ++lane.stats.rejected_queue_full;
    return refusal(lane_index, RefusalReason::queue_full, now);
  }
  lane.rooms[room].push_back(Waiting{id, now, next_seq_++});
  ++lane.depth;
  index_.emplace(id, std::make_pair(lane_index, room));
  ++lane.stats.queued_total;
  return std::nullopt;
}

std::vector<Expired> Lanes::expire(TimePoint now) {
  std::vector<Expired> out;
  out.swap(expired_);
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    // Same max_wait for the whole lane and FIFO order: deadlines rise along each room's queue.
    for (auto room = lane.rooms.begin(); room != lane.rooms.end();) {
      auto& queue = room->second;
      while (!queue.empty() && now - queue.front().enqueued >= lane.config.max_wait) {
        const TicketId id = queue.front().id;
        queue.pop_front();
        --lane.depth;
        index_.erase(id);
        ++lane.stats.rejected_deadline;
        out.push_back(Expired{id, refusal(i, RefusalReason::deadline, now)});
      }
      room = queue.empty() ? lane.rooms.erase(room) : std::next(room);
    }
  }
  return out;
}

std::deque<Lanes::Waiting>* Lanes::oldest(Lane& lane, std::size_t index, const Fits& fits, bool owed) {
  std::deque<Waiting>* best = nullptr;
  for (auto& [room, queue] : lane.rooms) {
    if (fits && !fits(index, room, owed)) continue;
    if (best == nullptr || queue.front().seq < best->front().seq) best = &queue;
  }
  return best;
}

std::optional<Admitted> Lanes::pull(TimePoint now, const Fits& fits) {
  std::vector<Expired> met = expire(now);
  expired_.insert(expired_.end(), std::make_move_iterator(met.begin()), std::make_move_iterator(met.end()));

  // The credit each waiting lane would have after this admission; committed only when one
  // is made, so a pull that finds no room changes nothing.
  std::optional<std::size_t> chosen;
  std::deque<Waiting>* queue = nullptr;
  std::optional<std::size_t> owed;
  std::deque<Waiting>* owed_queue = nullptr;
  std::uint32_t owed_credit = 0;
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    if (lane.depth == 0) continue;
    if (!chosen) {
      if (auto* q = oldest(lane, i, fits, false)) {
        chosen = i;
        queue = q;
      }
    }
    if (lane.config.min_share_permille == 0) continue;
    const std::uint32_t credit = std::min<std::uint32_t>(lane.credit_permille + lane.config.min_share_permille, 1000);
    if (credit < 1000 || (owed && owed_credit >= credit)) continue;
    if (auto* q = oldest(lane, i, fits, true)) {
      owed = i;
      owed_queue = q;
      owed_credit = credit;
    }
  }
  if (owed) {
    chosen = owed;
    queue = owed_queue;
  }
  if (!chosen) return std::nullopt;
  for (auto& lane : lanes_) {
    if (lane.depth > 0 && lane.config.min_share_permille > 0) {
      lane.credit_permille = std::min<std::uint32_t>(lane.credit_permille + lane.config.min_share_permille, 1000);
    }
  }
  Lane& lane = lanes_[*chosen];
  // Served, by its share or its rank: what it was owed is paid.
  if (lane.config.min_share_permille > 0) lane.credit_permille = lane.credit_permille >= 1000 ? lane.credit_permille - 1000 : 0;
  const Waiting next = queue->front();
  queue->pop_front();
  const RoomId room = index_.at(next.id).second;
  if (queue->empty()) lane.rooms.erase(room);
  --lane.depth;
  index_.erase(next.id);
  const Duration waited = now - next.enqueued;
  record_admission(lane, waited, now);
  return Admitted{next.id, *chosen, waited, room, owed.has_value()};
}

bool Lanes::cancel(TicketId id) {
  const auto it = index_.find(id);
  if (it == index_.end()) return false;
  Lane& lane = lanes_[it->second.first];
  const auto room = lane.rooms.find(it->second.second);
  if (room != lane.rooms.end()) {
    auto& queue = room->second;
    const auto at = std::find_if(queue.begin(), queue.end(), [id](const Waiting& w) { return w.id == id; });
    if (at != queue.end()) {
      queue.erase(at);
      --lane.depth;
    }
    if (queue.empty()) lane.rooms.erase(room);
  }
  index_.erase(it);
  ++lane.stats.cancelled_total;
  return true;
}

std::optional<TimePoint> Lanes::next_deadline() const noexcept {
  std::optional<TimePoint> earliest;
  for (const auto& lane : lanes_) {
    for (const auto& [room, queue] : lane.rooms) {
      const TimePoint deadline = queue.front().enqueued + lane.config.max_wait;
      if (!earliest || deadline < *earliest) earliest = deadline;
    }
  }
  return earliest;
}

Duration Lanes::retry_after(std::size_t lane_index, TimePoint now) {
  Lane& lane = lanes_.at(lane_index);
  while (!lane.admissions.empty() && now - lane.admissions.front() >= rate_window_) lane.admissions.pop_front();
  const Duration fallback = std::max<Duration>(lane.config.max_wait, std::chrono::seconds(1));
  if (lane.admissions.empty()) return fallback;
  // Samples are capped: when full, they cover less than the window, measured from the oldest.
  const Duration span = lane.admissions.size() >= kMaxRateSamples ? now - lane.admissions.front() : rate_window_;
  if (span <= Duration::zero()) return fallback;
  // In integers (ns), rounded up: one admission interval, and the time to drain the queue
  // beyond what the lane's wait covers.
  const auto n = static_cast<Duration::rep>(lane.admissions.size());
  const Duration interval{(span.count() + n - 1) / n};
  const auto depth = static_cast<Duration::rep>(lane.depth);
  const Duration drain{(depth * span.count() + n - 1) / n};
  return std::max(interval, drain - lane.config.max_wait);
}

std::vector<LaneStats> Lanes::stats() const {
  std::vector<LaneStats> out;
  out.reserve(lanes_.size());
  for (const auto& lane : lanes_) {
    out.push_back(lane.stats);
    out.back().depth = lane.depth;
  }
  return out;
}

void Lanes::record_admission(Lane& lane, Duration waited, TimePoint now) {
  ++lane.stats.admitted_total;
  const double seconds = std::chrono::duration<double>(waited).count();
  lane.stats.wait_seconds_sum += seconds;
  std::size_t bucket = 0;
  while (bucket < std::size(kWaitBucketsSeconds) && seconds > kWaitBucketsSeconds[bucket]) ++bucket;
  ++lane.stats.wait_bucket_counts[bucket];
  lane.admissions.push_back(now);
  if (lane.admissions.size() > kMaxRateSamples) lane.admissions.pop_front();
}

Refusal Lanes::refusal(std::size_t lane, RefusalReason reason, TimePoint now) {
  return Refusal{reason, lane, retry_after(lane, now), lanes_[lane].depth};
}

Room::Room(std::size_t relay_in_flight, std::size_t unsent_per_lane) : relay_cap_(relay_in_flight), unsent_per_lane_(unsent_per_lane) {
  if (relay_cap_ == 0 || unsent_per_lane_ == 0) throw Error("the gateway's room needs at least 1 request in flight and 1 unsent per lane");
}

RoomId Room::of(std::string_view model) {
  const auto it = models_.find(std::string(model));
  if (it != models_.end()) return it->second;
  if (models_.size() >= kMaxModels) return kRelay + 1 + kMaxModels;  // the others, together
  const auto id = static_cast<RoomId>(kRelay + 1 + models_.size());
  models_.emplace(std::string(model), id);
  return id;
}

bool Room::fits(std::size_t lane, RoomId room, bool owed) const {
  if (room == kRelay) return relay_ < relay_cap_;
  return unsent(lane, room) < unsent_per_lane_ + (owed ? 1 : 0);
}

std::optional<Admitted> Room::pull(Lanes& lanes, TimePoint now) {
  auto next = lanes.pull(now, [this](std::size_t lane, RoomId room, bool owed) { return fits(lane, room, owed); });
  if (next) take(next->lane, next->room);
  return next;
}

void Room::take(std::size_t lane, RoomId room) {
  if (room == kRelay) {
    ++relay_;
  } else {
    ++unsent_[{lane, room}];
  }
}

void Room::give_back(std::size_t lane, RoomId room) {
  if (room == kRelay) {
    if (relay_ > 0) --relay_;
    return;
  }
  const auto it = unsent_.find({lane, room});
  if (it == unsent_.end()) return;
  if (--it->second == 0) unsent_.erase(it);
}

std::size_t Room::unsent(std::size_t lane, RoomId room) const {
  const auto it = unsent_.find({lane, room});
  return it == unsent_.end() ? 0 : it->second;
}

}  // namespace floodgate::gateway
