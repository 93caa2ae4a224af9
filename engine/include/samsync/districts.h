// The city's districts (stadsdelsnämnder), as of 2016.
#ifndef SAMSYNC_DISTRICTS_H_
#define SAMSYNC_DISTRICTS_H_

#include <string>
#include <string_view>
#include <vector>

#include "samsync/status.h"

namespace samsync {

const std::vector<std::string>& Districts();
// Matches case-insensitively (ASCII) and returns the canonical spelling; fails with
// kInvalidInput listing the districts.
Result<std::string> CanonicalDistrict(std::string_view name);

}  // namespace samsync

#endif  // SAMSYNC_DISTRICTS_H_
