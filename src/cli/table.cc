#include "cli/table.h"

#include <algorithm>

namespace airlock::cli {
namespace {

constexpr const char* kGap = "  ";

std::string Cell(const TableRow& row, size_t i) {
  if (i >= row.size() || row[i].empty()) return "-";
  return row[i];
}

void PrintRow(std::ostream& out, const TableRow& row, const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < widths.size(); ++i) {
    std::string cell = Cell(row, i);
    if (i + 1 < widths.size()) cell.resize(std::max(widths[i], cell.size()), ' ');
    line += (i == 0 ? "" : kGap) + cell;
  }
  out << line << "\n";
}

}  // namespace

void PrintTable(std::ostream& out, const TableRow& header, const std::vector<TableRow>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) {
    widths[i] = header[i].size();
    for (const TableRow& row : rows) widths[i] = std::max(widths[i], Cell(row, i).size());
  }
  PrintRow(out, header, widths);
  for (const TableRow& row : rows) PrintRow(out, row, widths);
}

}  // namespace airlock::cli
