// The command line of `fulcrum`: argv to an Invocation (a MgmtRequest to
// send, help to print, or a usage error), and the help texts.
//
//   fulcrum [--socket PATH] [--json] [--timeout SECONDS] COMMAND ...
//
// Commands and their MgmtRequest field:
//   set STATEMENT...                          edit {statements: "set ..."}
//   delete STATEMENT...                       edit {statements: "delete ..."}
//   show configuration [--candidate]          show_config {candidate}
//   compare                                   compare
//   commit [-m COMMENT | --comment COMMENT]   commit {comment}
//   rollback N                                rollback {number}, N a positive integer
//   show commits                              show_commits
//   load FILE                                 load (Invocation::loadPath = FILE)
//   show servers                              show_servers
//   show sessions [APPLICATION]               show_sessions {application}
//   show statistics                           show_statistics
//   show engines                              show_engines
//   show affinity-store                       show_affinity_store
//   clear sessions [APPLICATION]              clear_sessions {application}
//   request server drain APPLICATION SERVER   drain {application, server, drain: true}
//   request server undrain APPLICATION SERVER drain {application, server, drain: false}
//   help [COMMAND...]                         help (also -h/--help anywhere before `--`)
//   --version (before any command)            "fulcrum VERSION\n" as help text
//
// Options: `--name VALUE`, `--name=VALUE`, and for -m also `-mVALUE`. The
// global options may come before or after the command words; `--` ends
// option processing. A valued option given twice is an error. In set and
// delete, every word after the command words belongs to the statement
// (including words that start with '-') except the global options and
// -h/--help; after `--`, every word does.
//
// Help: `help` alone, or -h/--help before a command, gives the overview;
// `help COMMAND...` or `COMMAND... --help` gives that command's usage line,
// what it does and an example (words after a whole command are ignored);
// an incomplete command (`help show`) lists the commands it starts.
//
// Usage errors are one line naming the offending word, without the
// "fulcrum: " prefix: an unknown command or option, a missing or extra
// operand, a bad value (--timeout, rollback's N), an empty APPLICATION or
// SERVER, or a word that cannot go into the request (a control character;
// not UTF-8). Words are shown through escapeForDisplay().
//
// Pure: no I/O, no environment; never throws (except std::bad_alloc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mgmt/cli_types.h"

namespace fulcrum::cli {

// `args` is argv without argv[0].
Invocation parseArgs(const std::vector<std::string>& args);

// The usage of every command, without "fulcrum ", in the overview's order:
// "set STATEMENT...", ..., "request server undrain APPLICATION SERVER".
std::vector<std::string> commandUsages();

// `word` as one token of the configuration language: as is when it can be
// read back so; else in double quotes with `"` and `\` escaped as `\"` and
// `\\` (words that are empty, hold a blank, '#', '"' or '\'). A tab is kept
// inside quotes. Other control characters cannot be expressed at all; the
// parser refuses such words before they get here.
std::string quoteWord(std::string_view word);

// "set"/"delete" followed by each word through quoteWord(), separated by one blank.
std::string buildStatement(std::string_view verb, const std::vector<std::string>& words);

}  // namespace fulcrum::cli
