# The examples run and do what they say: tracing_demo makes the document's spans.
add_test(NAME example.tracing_demo
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/tracing_demo_test.sh $<TARGET_FILE:tracing_demo>)
set_tests_properties(example.tracing_demo PROPERTIES TIMEOUT 120 LABELS example)
