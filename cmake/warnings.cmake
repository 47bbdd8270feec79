# The project's one warning set (STYLE.md); -Werror when IMGMETA_WERROR is on (CI).
function(imgmeta_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -pedantic -Wshadow -Wformat=2 -Wvla
    -Wmissing-prototypes -Wstrict-prototypes)
  if(IMGMETA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
