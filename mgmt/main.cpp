// fulcrum: the management CLI. Everything but the process's own I/O lives in
// the fulcrum_cli library (mgmt/cli.h), so that it is tested without a daemon.
#include <iostream>
#include <string>
#include <vector>

#include "mgmt/cli.h"
#include "mgmt/socket_transport.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  fulcrum::cli::SocketTransport transport;
  const int status =
      fulcrum::cli::run(args, fulcrum::cli::processEnvironment(), transport, std::cout, std::cerr);
  // A script that reads a file we failed to fill (full disk) must not see success.
  if (!(std::cout << std::flush)) {
    std::cerr << "fulcrum: cannot write the output\n";
    return fulcrum::cli::kExitOutput;
  }
  return status;
}
