// samsync: the district's command. See README.md for the user's guide.
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
  using namespace samsync::cli;
  CLI::App app{"samsync: the district's encrypted store of school and social-services collaboration"};
  app.set_version_flag("--version", "samsync 0.1.0");
  app.require_subcommand(1);
  Globals globals;
  AddGlobalOptions(app, globals);
  Handler handler;
  RegisterStoreCommands(app, globals, handler);
  RegisterRecordCommands(app, globals, handler);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, the exit code for bad input.
    std::cerr << "samsync: " << e.what() << " (see samsync --help)" << std::endl;
    return kExitInvalid;
  }
  return handler ? handler() : kExitInvalid;
}
