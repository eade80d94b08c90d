/* A shared object that exports something, but not the provider entry symbol. */
__attribute__((visibility("default"))) int not_an_athomic_provider(void) { return 42; }
