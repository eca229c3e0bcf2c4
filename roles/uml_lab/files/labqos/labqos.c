// SPDX-License-Identifier: GPL-2.0
/*
 * labqos: a virtual device that publishes the criteria a host would use to pick a network interface.
 *
 * /sys/kernel/labqos/
 *   figures/{bw,delay,jitter,price}  weights, unsigned integers, read/write
 *   ifaces                           the interfaces considered, space separated, read/write
 *   version                          the module's version, read-only
 *
 * Nothing reads the figures inside the kernel: the device exists so a lab can exercise a module's
 * whole life (build against a tree, load, sysfs, unload) in user-mode Linux.
 */
#include <linux/ctype.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#define LABQOS_VERSION "1.0"
#define LABQOS_IFACES_MAX 256

enum labqos_figure { LABQOS_BW, LABQOS_DELAY, LABQOS_JITTER, LABQOS_PRICE, LABQOS_NR_FIGURES };

static DEFINE_MUTEX(labqos_lock);
static unsigned int labqos_figures[LABQOS_NR_FIGURES];
static char labqos_ifaces[LABQOS_IFACES_MAX] = "";
static struct kobject *labqos_kobj;

static const char *const labqos_figure_names[LABQOS_NR_FIGURES] = {
	[LABQOS_BW] = "bw",
	[LABQOS_DELAY] = "delay",
	[LABQOS_JITTER] = "jitter",
	[LABQOS_PRICE] = "price",
};

/* One show/store pair for all four figures: the attribute's name says which. */
static int labqos_figure_index(const struct kobj_attribute *attr)
{
	int i;

	for (i = 0; i < LABQOS_NR_FIGURES; i++)
		if (!strcmp(attr->attr.name, labqos_figure_names[i]))
			return i;
	return -EINVAL;
}

static ssize_t figure_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	int i = labqos_figure_index(attr);
	unsigned int value;

	if (i < 0)
		return i;
	mutex_lock(&labqos_lock);
	value = labqos_figures[i];
	mutex_unlock(&labqos_lock);
	return sysfs_emit(buf, "%u\n", value);
}

static ssize_t figure_store(struct kobject *kobj, struct kobj_attribute *attr, const char *buf, size_t count)
{
	int i = labqos_figure_index(attr);
	unsigned int value;
	int err;

	if (i < 0)
		return i;
	err = kstrtouint(buf, 0, &value);
	if (err)
		return err;
	mutex_lock(&labqos_lock);
	labqos_figures[i] = value;
	mutex_unlock(&labqos_lock);
	return count;
}

static struct kobj_attribute labqos_bw_attr = __ATTR(bw, 0644, figure_show, figure_store);
static struct kobj_attribute labqos_delay_attr = __ATTR(delay, 0644, figure_show, figure_store);
static struct kobj_attribute labqos_jitter_attr = __ATTR(jitter, 0644, figure_show, figure_store);
static struct kobj_attribute labqos_price_attr = __ATTR(price, 0644, figure_show, figure_store);

static struct attribute *labqos_figure_attrs[] = {
	&labqos_bw_attr.attr,
	&labqos_delay_attr.attr,
	&labqos_jitter_attr.attr,
	&labqos_price_attr.attr,
	NULL,
};

/* A named group is a subdirectory: /sys/kernel/labqos/figures/. */
static const struct attribute_group labqos_figures_group = {
	.name = "figures",
	.attrs = labqos_figure_attrs,
};

static ssize_t ifaces_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	ssize_t len;

	mutex_lock(&labqos_lock);
	len = sysfs_emit(buf, "%s\n", labqos_ifaces);
	mutex_unlock(&labqos_lock);
	return len;
}

/* Interface names are printable and space separated; anything else is refused whole. */
static ssize_t ifaces_store(struct kobject *kobj, struct kobj_attribute *attr, const char *buf, size_t count)
{
	size_t len = count;
	size_t i;

	if (len && buf[len - 1] == '\n')
		len--;
	if (len >= LABQOS_IFACES_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < len; i++)
		if (!isgraph(buf[i]) && buf[i] != ' ')
			return -EINVAL;
	mutex_lock(&labqos_lock);
	memcpy(labqos_ifaces, buf, len);
	labqos_ifaces[len] = '\0';
	mutex_unlock(&labqos_lock);
	return count;
}

static ssize_t version_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", LABQOS_VERSION);
}

static struct kobj_attribute labqos_ifaces_attr = __ATTR(ifaces, 0644, ifaces_show, ifaces_store);
static struct kobj_attribute labqos_version_attr = __ATTR_RO(version);

static struct attribute *labqos_attrs[] = {
	&labqos_ifaces_attr.attr,
	&labqos_version_attr.attr,
	NULL,
};

static const struct attribute_group labqos_group = {
	.attrs = labqos_attrs,
};

static const struct attribute_group *labqos_groups[] = {
	&labqos_group,
	&labqos_figures_group,
	NULL,
};

static int __init labqos_init(void)
{
	int err;

	labqos_kobj = kobject_create_and_add("labqos", kernel_kobj);
	if (!labqos_kobj)
		return -ENOMEM;
	err = sysfs_create_groups(labqos_kobj, labqos_groups);
	if (err) {
		kobject_put(labqos_kobj);
		return err;
	}
	pr_info("labqos: version %s loaded\n", LABQOS_VERSION);
	return 0;
}

static void __exit labqos_exit(void)
{
	sysfs_remove_groups(labqos_kobj, labqos_groups);
	kobject_put(labqos_kobj);
	pr_info("labqos: unloaded\n");
}

module_init(labqos_init);
module_exit(labqos_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("labkit: network interface selection criteria in sysfs");
MODULE_VERSION(LABQOS_VERSION);
