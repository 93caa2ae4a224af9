// Follow-up inputs built by hand, without a store: several districts at once, and
// the same child (the same reference) in more than one of them, as the city-wide
// store holds them. For the citywide report and suppression tests.
#ifndef SAMSYNC_TESTS_FOLLOWUP_BUILDER_H_
#define SAMSYNC_TESTS_FOLLOWUP_BUILDER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "samsync/followup.h"
#include "test_support.h"

namespace samsync::testing {

// A distinct id for every call (its first bytes count up).
inline Id16 NextTestId() {
  static uint64_t next = 1;
  Id16 id;
  uint64_t n = next++;
  for (int i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<uint8_t>(n >> (8 * i));
  id.bytes[0] = 0x01;
  return id;
}

// Child number `n`: the same `n` is the same child in every district.
inline ChildRef TestChild(int n) {
  ChildRef ref;
  ref.bytes[0] = 0xC0;
  ref.bytes[14] = static_cast<uint8_t>(n >> 8);
  ref.bytes[15] = static_cast<uint8_t>(n);
  return ref;
}

// The inputs, moved into a vector (an initializer list would copy them, and records
// are not copyable).
template <typename... Inputs>
std::vector<FollowupInput> InputList(Inputs&&... inputs) {
  std::vector<FollowupInput> out;
  (out.push_back(std::forward<Inputs>(inputs)), ...);
  return out;
}

class DistrictBuilder {
 public:
  using Fields = std::vector<std::pair<std::string, std::string>>;

  explicit DistrictBuilder(std::string district) { input_.district = std::move(district); }

  RecordId School(bool independent = false, bool ppss_focus = false) {
    return Add(RecordType::kSchool, {{"name", "Skola " + std::to_string(++schools_)},
                                     {"principal", independent ? "independent" : "municipal"},
                                     {"ppssFocus", ppss_focus ? "true" : "false"}});
  }
  void Contact(const RecordId& school, std::string worker, std::string from, std::string informed = "") {
    Add(RecordType::kContact, {{"schoolId", school.ToText()},
                               {"socialWorker", std::move(worker)},
                               {"fromDate", std::move(from)},
                               {"informedDate", std::move(informed)}});
  }
  void Agreement(std::string adopted) {
    Add(RecordType::kAgreement, {{"version", "1"}, {"parties", "SDN,Grundskola"}, {"adoptedDate", std::move(adopted)}});
  }
  void Material(std::string unit, std::string date) {
    Add(RecordType::kMaterial, {{"unit", std::move(unit)}, {"date", std::move(date)}, {"form", "groupMeeting"}});
  }
  void Forum(std::string kind, std::string date, const std::vector<RecordId>& invited = {},
             const std::vector<RecordId>& attended = {}) {
    Add(RecordType::kForum, {{"kind", std::move(kind)},
                             {"date", std::move(date)},
                             {"invitedSchoolIds", IdList(invited)},
                             {"attendedSchoolIds", IdList(attended)}});
  }
  void Concern(const RecordId& school, int child, std::string received, std::string feedback = "") {
    Add(RecordType::kConcern, {{"schoolId", school.ToText()},
                               {"childRef", TestChild(child).ToText()},
                               {"receivedDate", std::move(received)},
                               {"feedbackDate", feedback},
                               {"feedbackForm", feedback.empty() ? "none" : "phone"}});
  }
  void Enrolment(int child, const RecordId& school, std::string programme, std::string start, bool plan = false) {
    Add(RecordType::kEnrolment, {{"childRef", TestChild(child).ToText()},
                                 {"schoolId", school.ToText()},
                                 {"programme", std::move(programme)},
                                 {"startDate", std::move(start)},
                                 {"hasSchoolPlan", plan ? "true" : "false"}});
  }
  void FollowUp(int child, std::string date, Fields more = {}) {
    Fields fields = {{"childRef", TestChild(child).ToText()}, {"date", std::move(date)}};
    fields.insert(fields.end(), more.begin(), more.end());
    Add(RecordType::kFollowup, fields);
  }
  void Absence(int child, const RecordId& school, std::string flagged, std::string contacted = "") {
    Add(RecordType::kAbsence, {{"childRef", TestChild(child).ToText()},
                               {"schoolId", school.ToText()},
                               {"flaggedDate", std::move(flagged)},
                               {"contactedDate", std::move(contacted)}});
  }

  const FollowupInput& input() const { return input_; }
  FollowupInput Take() { return std::move(input_); }

 private:
  static std::string IdList(const std::vector<RecordId>& ids) {
    std::string out;
    for (const RecordId& id : ids) out += (out.empty() ? "" : ",") + id.ToText();
    return out;
  }
  RecordId Add(RecordType type, const Fields& fields) {
    Record record = MakeRecord(type, fields);
    RecordId id = NextTestId();
    record.set_id(id);
    record.set_district(input_.district);
    input_.Of(type).push_back(std::move(record));
    return id;
  }

  FollowupInput input_;
  int schools_ = 0;
};

}  // namespace samsync::testing

#endif  // SAMSYNC_TESTS_FOLLOWUP_BUILDER_H_
