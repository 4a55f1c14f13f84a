/* Stand-in for the macOS SDK's TargetConditionals.h, for scripts/check-macos
   only: the one SDK header ring's C asks for, saying "macOS, not iOS". What is
   compiled with it is never linked. */
#ifndef PORTCULLIS_TARGET_CONDITIONALS_STAND_IN
#define PORTCULLIS_TARGET_CONDITIONALS_STAND_IN
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_TV 0
#define TARGET_OS_VISION 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_EMBEDDED 0
#endif
