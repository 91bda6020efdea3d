// The data module's error type, on its own so that the row readers (which `eval` shares) need
// nothing else from the module.
#pragma once

#include <stdexcept>

namespace autotrain::data {

// Bad input (a missing file or column, no rows, nothing left after blocking): the message says
// what, where and how to fix it. The CLI exits 2.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace autotrain::data
