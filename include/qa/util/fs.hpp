// File-system helpers: whole-file reads with clear errors, and crash-safe (atomic) writes.
#pragma once

#include <string>

namespace qa {

// Reads a whole file; `what` names it in errors ("data file", "tokenizer model").
std::string read_file(const std::string& path, const std::string& what);

// Writes `content` to `path` so that a reader sees the old or the new file, never a partial one:
// a temporary file in the same folder, fsync, rename, fsync of the folder.
void write_file_atomic(const std::string& path, const std::string& content);

// A fresh temporary folder next to `target` (".<target>.tmp-<pid>-<n>") to fill and then publish.
std::string make_staging_dir(const std::string& target);
// Publishes a filled staging folder as `target`: fsyncs its files, then swaps it in with one
// rename (renameat2 RENAME_EXCHANGE when `target` exists), then deletes the old folder.
void publish_dir(const std::string& staging, const std::string& target);

// Creates `dir` (and parents) and checks that a file can be written there; errors name `key`.
void ensure_writable_dir(const std::string& dir, const std::string& key);

// `p` if absolute, else `base_dir/p` (normalised lexically). Empty stays empty.
std::string resolve_path(const std::string& base_dir, const std::string& p);

// Folder that holds the running executable (from /proc/self/exe).
std::string executable_dir();

// Deletes `path` and, if it is a folder, everything under it (symbolic links themselves, not what
// they point to). True when nothing is left at `path` (a missing path included).
// POSIX, not std::filesystem::remove_all: PyTorch's pip wheels export their own copy of that one,
// which the program binds to whatever the link order, and which jumps to address 0 there
// (pytorch/pytorch#133437). Nothing in qa-train or its tests calls std::filesystem::remove_all.
bool remove_tree(const std::string& path) noexcept;

// Takes the folder `dir` out of sight with one rename (to a staging name, as make_staging_dir gives),
// then deletes it: nobody sees it half deleted, and a kill midway leaves only a staging folder for
// its owner to clean up. True when nothing is left at `dir`.
bool discard_dir(const std::string& dir) noexcept;

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);

}  // namespace qa
