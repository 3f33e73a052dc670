# Run at build time (cmake -P): writes OUT, a .cc that holds every migrations/NNNN_*.sql file as a string,
# so the binary needs no source tree. Inputs: MIGRATIONS_DIR, OUT.
file(GLOB files ${MIGRATIONS_DIR}/[0-9][0-9][0-9][0-9]_*.sql)
list(SORT files)
set(entries "")
foreach(f ${files})
  get_filename_component(name ${f} NAME)
  string(SUBSTRING ${name} 0 4 number)
  math(EXPR number "${number}")
  file(READ ${f} sql)
  # A raw string with a delimiter that cannot occur in our SQL.
  string(FIND "${sql}" ")airlock_sql\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${name} contains the raw-string delimiter")
  endif()
  string(APPEND entries "    {${number}, \"${name}\", R\"airlock_sql(${sql})airlock_sql\"},\n")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from src/storage/migrations by embed_migrations.cmake; do not edit.\n"
  "#include \"storage/migrations.h\"\n\n"
  "namespace airlock::storage {\n\n"
  "std::span<const Migration> Migrations() {\n"
  "  static const Migration kMigrations[] = {\n${entries}  };\n"
  "  return kMigrations;\n}\n\n}  // namespace airlock::storage\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
