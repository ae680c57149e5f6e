/* trigger: see trigger.h */
#include "trigger.h"

void trigger_open_write(struct trigger *t, bool changes)
{
	t->writers++;
	if (changes)
		t->gen++;
}

void trigger_changed(struct trigger *t)
{
	t->gen++;
}

bool trigger_flush(const struct trigger *t)
{
	return t->gen != t->sched_gen;
}

bool trigger_dirty(const struct trigger *t)
{
	return t->gen != t->sched_gen;
}

bool trigger_release_write(struct trigger *t)
{
	if (t->writers > 0)
		t->writers--;
	if (t->writers > 0 || t->gen == t->sched_gen)
		return false;
	t->sched_gen = t->gen;
	return true;
}

bool trigger_renamed_onto(struct trigger *t)
{
	t->gen++;
	if (t->writers > 0)
		return false;
	t->sched_gen = t->gen;
	return true;
}
