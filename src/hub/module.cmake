# hub: the Hugging Face Hub: downloads into its cache (`autotrain download`, and models or
# datasets named by id that the cache lacks) and uploads (`autotrain upload`, PUSH_TO_HUB). No
# LibTorch. libcurl is opened at run time
# (src/hub/http.cpp), so only its header is needed to build; without it the program builds and
# says that it cannot download.
find_path(AUTOTRAIN_CURL_INCLUDE_DIR curl/curl.h)
add_library(autotrain_hub STATIC
  ${CMAKE_CURRENT_LIST_DIR}/http.cpp
  ${CMAKE_CURRENT_LIST_DIR}/client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/encoding.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hub.cpp
  ${CMAKE_CURRENT_LIST_DIR}/upload.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fetcher.cpp)
target_include_directories(autotrain_hub PUBLIC ${AUTOTRAIN_INCLUDE})
if(AUTOTRAIN_CURL_INCLUDE_DIR)
  target_include_directories(autotrain_hub SYSTEM PRIVATE ${AUTOTRAIN_CURL_INCLUDE_DIR})
  target_compile_definitions(autotrain_hub PRIVATE AUTOTRAIN_HAVE_CURL_H=1)
else()
  message(WARNING "curl/curl.h not found (Debian: libcurl4-openssl-dev): autotrain will build without downloads")
  target_compile_definitions(autotrain_hub PRIVATE AUTOTRAIN_HAVE_CURL_H=0)
endif()
target_compile_definitions(autotrain_hub PRIVATE AUTOTRAIN_VERSION="${PROJECT_VERSION}")
target_link_libraries(autotrain_hub PUBLIC autotrain_model_config
                                    PRIVATE autotrain_data autotrain_io autotrain_config nlohmann_json::nlohmann_json fmt::fmt
                                            ${CMAKE_DL_LIBS})

target_sources(autotrain PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_download.cpp ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_upload.cpp)
target_link_libraries(autotrain PRIVATE autotrain_hub)
