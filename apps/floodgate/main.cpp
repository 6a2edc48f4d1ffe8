// floodgate — push thousands or millions of calls through an OpenAI-compatible API at the
// rate limit, never over it, resumable, within a budget.

#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "floodgate/core/error.hpp"
#include "floodgate/core/exit_codes.hpp"
#include "floodgate/version.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "floodgate: run large batches of OpenAI-compatible API calls at the rate limit, never over it.\n"
      "Paces by requests/min, tokens/min, requests/day and tokens/day; retries what is retryable;\n"
      "journals every outcome so a re-run resumes and never pays twice.\n\n"
      "Environment: OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID.\n"
      "Exit codes: 0 ok, 1 the output holds error lines, 2 usage/config error, 3 insufficient_quota,\n"
      "4 budget reached, 5 interrupted, 6 paused until a limit resets, 7 the API never answered\n"
      "(wrong base URL or server down), 8 the API stopped answering mid-run (outage), 9 the key,\n"
      "URL path or model was refused, 70 internal error,\n"
      "74 cannot write (disk full; resumable).",
      "floodgate"};
  app.set_version_flag("-V,--version", std::string("floodgate ") + floodgate::kVersion);
  app.require_subcommand(1);
  app.fallthrough(false);

  int exit_code = floodgate::exit_code::ok;
  // register_* calls go here, in --help order.
  floodgate::cli::register_run(app, exit_code);
  floodgate::cli::register_batch(app, exit_code);
  floodgate::cli::register_transcribe(app, exit_code);
  floodgate::cli::register_sim(app, exit_code);
  floodgate::cli::register_serve(app, exit_code);
  floodgate::cli::register_tokens(app, exit_code);
  floodgate::cli::register_estimate(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "floodgate: %s\n", e.what());
    if (e.get_exit_code() != 0) {
      // Point at the help of the subcommand whose flags were wrong, not at the list of them.
      // Down to the deepest one given: `floodgate batch submit --nope` names batch submit's.
      std::string help = "floodgate";
      for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
        at = at->get_subcommands().front();
        help += " " + at->get_name();
      }
      std::fprintf(stderr, "Run '%s --help' for usage.\n", help.c_str());
    }
    return e.get_exit_code() == 0 ? 0 : floodgate::exit_code::usage;
  } catch (const floodgate::Error& e) {
    std::fprintf(stderr, "floodgate: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "floodgate: internal error: %s\n", e.what());
    return floodgate::exit_code::internal;
  }
  return exit_code;
}
