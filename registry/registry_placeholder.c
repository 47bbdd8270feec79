/* placeholder until the module lands */
typedef int registry_placeholder_t;
