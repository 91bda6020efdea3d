autotrain_add_gtest(hub_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/hub_test.cpp LIBS autotrain_hub autotrain_model_config)
