#include "qa/util/fs.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qa/util/error.hpp"

namespace fs = std::filesystem;

namespace qa {
namespace {

std::string errno_text() { return std::strerror(errno); }

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);  // children come first (FTW_DEPTH): folders are empty when their turn comes
  return 0;
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open to flush: " + errno_text());
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    throw Error(path + ": cannot flush to disk: " + errno_text());
  }
}

std::string parent_of(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

std::atomic<int> g_counter{0};

std::string unique_suffix() {
  return std::to_string(::getpid()) + "-" + std::to_string(g_counter++);
}

}  // namespace

std::string read_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw_bad_file(path, what + " is a folder, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_file(path, "cannot open " + what + ": " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw_bad_file(path, "cannot read " + what + ": " + errno_text());
  return ss.str();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + unique_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot write: " + errno_text());
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(path + ": cannot write: " + why);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot write: " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot replace: " + why);
  }
  fsync_path(parent_of(path), true);
}

namespace {
// A hidden sibling of `target` with a fresh name: ".<name>.tmp-<pid>-<n>".
std::string staging_name(const std::string& target) {
  fs::path t(target);
  return (t.parent_path() / ("." + t.filename().string() + ".tmp-" + unique_suffix())).string();
}
}  // namespace

std::string make_staging_dir(const std::string& target) {
  std::string staging = staging_name(target);
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) throw Error(staging + ": cannot create folder: " + ec.message());
  return staging;
}

void publish_dir(const std::string& staging, const std::string& target) {
  for (const auto& entry : fs::directory_iterator(staging)) {
    if (entry.is_regular_file()) fsync_path(entry.path().string(), false);
  }
  fsync_path(staging, true);
  std::error_code ec;
  if (fs::exists(target, ec)) {
    // Swap atomically so that `target` always names a complete folder.
    long rc = ::syscall(SYS_renameat2, AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), 2 /*RENAME_EXCHANGE*/);
    if (rc != 0) {
      // Older kernels or file systems without RENAME_EXCHANGE: move the old folder aside first.
      std::string aside = staging + ".old";
      if (::rename(target.c_str(), aside.c_str()) != 0 || ::rename(staging.c_str(), target.c_str()) != 0) {
        throw Error(target + ": cannot replace folder: " + errno_text());
      }
      remove_tree(aside);
    } else {
      remove_tree(staging);  // now holds the previous contents
    }
  } else if (::rename(staging.c_str(), target.c_str()) != 0) {
    throw Error(target + ": cannot create folder: " + errno_text());
  }
  fsync_path(parent_of(target), true);
}

void ensure_writable_dir(const std::string& dir, const std::string& key) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(dir + ": cannot create the " + key + " folder: " + (ec ? ec.message() : "not a folder"));
  }
  std::string probe = (fs::path(dir) / (".write-test-" + unique_suffix())).string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(dir + ": the " + key + " folder is not writable: " + errno_text());
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string resolve_path(const std::string& base_dir, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_absolute() || base_dir.empty()) return path.lexically_normal().string();
  return (fs::path(base_dir) / path).lexically_normal().string();
}

std::string executable_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return exe.parent_path().string();
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool dir_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool discard_dir(const std::string& dir) noexcept {
  try {
    const std::string aside = staging_name(dir);
    if (::rename(dir.c_str(), aside.c_str()) != 0) return remove_tree(dir);
    remove_tree(aside);
    return true;
  } catch (...) {  // staging_name allocates
    return false;
  }
}

bool remove_tree(const std::string& path) noexcept {
  if (path.empty()) return true;
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  struct stat st {};
  return ::lstat(path.c_str(), &st) != 0 && errno == ENOENT;
}

}  // namespace qa
