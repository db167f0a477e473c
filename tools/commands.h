/* Subcommands of the qcal CLI; each parses its own options and returns an exit code. */
#ifndef QCAL_TOOLS_COMMANDS_H
#define QCAL_TOOLS_COMMANDS_H

int cmd_infer(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_points(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_qat(int argc, char **argv);

#endif
