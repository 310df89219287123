# Writes OUT, a C++ file holding every DIR/NNNN_name.sql as a Migration.
file(GLOB files ${DIR}/*.sql)
list(SORT files)
set(body "")
foreach(f ${files})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} sql)
  string(APPEND body "    {\"${name}\", R\"nvsql(${sql})nvsql\"},\n")
endforeach()
file(WRITE ${OUT}.tmp
"// Generated from collector/store/migrations by cmake/embed_migrations.cmake.
#include <string_view>
#include <utility>
#include <vector>
namespace netvigil::collector {
const std::vector<std::pair<std::string_view, std::string_view>>& EmbeddedMigrations() {
  static const auto* m = new std::vector<std::pair<std::string_view, std::string_view>>{
${body}  };
  return *m;
}
}  // namespace netvigil::collector
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
