// Runs one of scripts/*.py with Debian's /usr/bin/python3 (where python3-matplotlib lives; a
// python3 earlier on PATH may lack it). Scripts are found in $LORASCOPE_SCRIPTS_DIR, else in the
// source tree's scripts/.
#pragma once

#include <string>
#include <vector>

namespace lorascope::cli {

// Returns the script's exit status; throws ConfigError when python or the script is missing.
int run_python_script(const std::string& script, const std::vector<std::string>& args);

}  // namespace lorascope::cli
