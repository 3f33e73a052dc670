# Run at build time (cmake -P): writes OUT, a .cc that holds every file of web/dashboard (not its
# sub-folders) as a byte array, so airlockd serves the dashboard without a source tree. Inputs:
# DASHBOARD_DIR, OUT. File names must be [A-Za-z0-9._-] and not start with '.'.
file(GLOB files LIST_DIRECTORIES false ${DASHBOARD_DIR}/*)
list(SORT files)
set(arrays "")
set(entries "")
set(index 0)
foreach(f ${files})
  get_filename_component(name ${f} NAME)
  if(NOT name MATCHES "^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
    message(FATAL_ERROR "web/dashboard/${name}: file names must be [A-Za-z0-9._-], not hidden")
  endif()
  file(READ ${f} hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # One line per 32 bytes keeps the generated file readable in an editor.
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n    " bytes "${bytes}")
  string(APPEND arrays "const unsigned char kFile${index}[] = {\n    ${bytes}0};\n")
  string(APPEND entries "      {\"${name}\", std::span<const unsigned char>(kFile${index}, ${size})},\n")
  math(EXPR index "${index} + 1")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from web/dashboard by embed_dashboard.cmake; do not edit.\n"
  "#include \"server/dashboard.h\"\n\n"
  "namespace airlock::server {\nnamespace {\n\n${arrays}\n}  // namespace\n\n"
  "std::span<const DashboardFile> DashboardFiles() {\n"
  "  static const DashboardFile kFiles[] = {\n${entries}  };\n"
  "  return kFiles;\n}\n\n}  // namespace airlock::server\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
