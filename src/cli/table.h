// The one printer for the CLI's listings (release list, channel list, device list, token list, key
// list, access list, ...): one header line, then one line per row, every column left-aligned to its
// widest cell and separated by two spaces (the last column is not padded). `--json` output does not
// go through here: each command prints the server's (or store's) JSON as it is.
#ifndef AIRLOCK_CLI_TABLE_H_
#define AIRLOCK_CLI_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace airlock::cli {

using TableRow = std::vector<std::string>;

// Prints `header` and `rows` to `out`. A row shorter than the header is padded with "-" cells; a
// longer one is cut to the header's width. An empty cell prints as "-".
void PrintTable(std::ostream& out, const TableRow& header, const std::vector<TableRow>& rows);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_TABLE_H_
