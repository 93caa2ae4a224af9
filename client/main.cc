// samsync: the district's command. See README.md for the user's guide.
#include <iostream>

#include "cli.h"
#include "samsync/process.h"

int main(int argc, char** argv) {
  using namespace samsync::cli;
  samsync::KeepFreedMemoryForReuse();
  CLI::App app{"samsync: the district's encrypted store of school and social-services collaboration"};
  app.set_version_flag("--version", "samsync 0.1.0");
  app.require_subcommand(1);
  Globals globals;
  AddGlobalOptions(app, globals);
  Handler handler;
  RegisterStoreCommands(app, globals, handler);
  RegisterRecordCommands(app, globals, handler);
  RegisterFollowupCommands(app, globals, handler);
  RegisterCityCommands(app, globals, handler);
  RegisterHistoryCommands(app, globals, handler);
  RegisterMergeCommands(app, globals, handler);
  RegisterSyncCommands(app, globals, handler);
  RegisterAuditCommands(app, globals, handler);
  RegisterAuditVerifyCommands(app, globals, handler);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, the exit code for bad input. Name an unknown command plainly.
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--store" || arg == "--key-file") {
        ++i;
        continue;
      }
      if (arg.rfind("-", 0) == 0) continue;
      auto subcommands = app.get_subcommands([&arg](CLI::App* sub) { return sub->check_name(arg); });
      if (subcommands.empty()) {
        std::cerr << "samsync: unknown command '" << arg << "' (see samsync --help)" << std::endl;
        return kExitInvalid;
      }
      break;
    }
    std::cerr << "samsync: " << e.what() << " (see samsync --help)" << std::endl;
    return kExitInvalid;
  }
  return handler ? handler() : kExitInvalid;
}
