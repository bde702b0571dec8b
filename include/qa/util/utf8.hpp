// UTF-8 validation for untrusted input text.
#pragma once

#include <cstddef>
#include <string_view>

namespace qa {

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, max U+10FFFF).
// On failure, `*bad_offset` (if given) receives the byte offset of the first bad sequence.
bool is_valid_utf8(std::string_view s, std::size_t* bad_offset = nullptr);

}  // namespace qa
