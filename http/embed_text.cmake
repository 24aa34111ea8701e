# Writes OUT: a C++ file defining `const char SYMBOL[]` in namespace todo::http with the bytes
# of IN (a text file without the sequence `)todo_embed"`).
file(READ ${IN} text)
string(FIND "${text}" ")todo_embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} holds the raw-string delimiter )todo_embed\"")
endif()
file(WRITE ${OUT} "// Generated from ${IN}. Do not edit.\nnamespace todo::http {\nextern const char ${SYMBOL}[];\nconst char ${SYMBOL}[] = R\"todo_embed(${text})todo_embed\";\n} // namespace todo::http\n")
