# dist: data-parallel runs (DESIGN.md D7). autotrain_dist_world (no LibTorch): the launcher's
# environment and `autotrain launch`; autotrain_dist: the collectives the trainer uses.
add_library(autotrain_dist_world STATIC ${CMAKE_CURRENT_LIST_DIR}/world.cpp ${CMAKE_CURRENT_LIST_DIR}/launch.cpp)
target_include_directories(autotrain_dist_world PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_dist_world PRIVATE fmt::fmt)

add_library(autotrain_dist STATIC ${CMAKE_CURRENT_LIST_DIR}/process_group.cpp)
target_include_directories(autotrain_dist PUBLIC ${AUTOTRAIN_INCLUDE})
target_link_libraries(autotrain_dist PUBLIC autotrain_dist_world)
autotrain_use_torch(autotrain_dist)

target_sources(autotrain PRIVATE ${PROJECT_SOURCE_DIR}/src/cli/cmd_launch.cpp)
target_link_libraries(autotrain PRIVATE autotrain_dist_world)
