// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Node glue for the loader (loader.h). Kernel work only: parsing, naming and printing
 * live in TypeScript.
 *
 * Events: one reader thread per tracer drains the ring buffer into batches
 * of fixed-size records and hands each batch to JS through a
 * ThreadSafeFunction (BlockingCall, small queue). When JS falls behind, the
 * thread blocks, the ring buffer fills, and the kernel counts what it could
 * not reserve: loss is counted in one place, never hidden. We chose a
 * thread over polling the ring's epoll fd from libuv because a thread
 * keeps draining while the JS thread is busy rendering or writing.
 *
 * record: once JS hands over the recording (writeRecords), a batch with nothing that an
 * earlier batch did not have (record_writer.c says what counts) is written to the file by this
 * thread and never reaches JS; a batch with anything new, or one that would cross --count,
 * still goes to JS, which describes it and writes it, and the thread writes nothing more until
 * JS has.
 *
 * close(): stop the thread → detach → drain what is left → snapshot the
 * exact counts → release. After that, delivered + lost == seen exactly.
 */
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <mutex>
#include <vector>

#include "loader.h"
#include "record_writer.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace {

constexpr size_t kBatchRecords = 4096;
/* and at most this many bytes: --path records are 2 KB, and 8 queued batches of 4096 would be 64 MB */
constexpr size_t kBatchBytes = 1 << 20;
constexpr int kPollMs = 50;

Napi::FunctionReference g_error_class;

/*
 * Memory of a process that lives on a node in trouble. glibc raises its mmap
 * threshold to the size of every large block freed (up to 32 MiB): after
 * libbpf frees its first parse of the kernel's BTF (5+ MB), later large
 * blocks (the next BTF parse, symbol columns, the 557 KB event batches JS
 * frees when it collects) come from the heap, fragment it, and their pages
 * stay with the process. A fixed threshold keeps large blocks in their own
 * mappings, returned to the kernel on free. Measured (peak RSS, 3 s
 * closed-port flood): live 113-116 -> 83-85 MB, trace --json 95-97 -> 82,
 * record 87-95 -> 81-88 (docs/PERFORMANCE.md).
 */
void TuneMalloc()
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

/* gives back the heap pages a load left free (libbpf's BTF and ELF work) */
void TrimMalloc()
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

Napi::Value ThrowError(Napi::Env env, int err, const char *phase, const std::string &msg,
		       const std::string &log = "", const std::string &tried = "")
{
	Napi::Object details = Napi::Object::New(env);
	details.Set("errno", Napi::Number::New(env, err));
	details.Set("phase", Napi::String::New(env, phase ? phase : "open"));
	details.Set("log", Napi::String::New(env, log));
	details.Set("tried", Napi::String::New(env, tried));
	if (g_error_class.IsEmpty()) {
		Napi::Error e = Napi::Error::New(env, msg);
		e.Set("details", details);
		e.ThrowAsJavaScriptException();
	} else {
		Napi::Value obj = g_error_class.New({ Napi::String::New(env, msg), details });
		if (!env.IsExceptionPending())
			Napi::Error(env, obj).ThrowAsJavaScriptException();
	}
	return env.Undefined();
}

/*
 * Tracer(options, onBatch?) takes how to open the tracer and the program's settings as the
 * bytes of struct dt_settings, which TypeScript encoded (src/capture/settings.ts) by the
 * layout settingsLayout() reads from the program's BTF. An unknown key or a value of the wrong
 * type is a TypeError, never read as 0.
 */
enum KeyKind { KEY_U32, KEY_BOOL, KEY_SETTINGS };
struct OpenKey {
	const char *name;
	KeyKind kind;
};
const OpenKey kOpenKeys[] = {
	{ "attach", KEY_U32 }, { "ringBytes", KEY_U32 }, { "countEntries", KEY_U32 }, { "verbose", KEY_BOOL }, { "settings", KEY_SETTINGS },
};

bool IsU32(const Napi::Value &v)
{
	if (!v.IsNumber())
		return false;
	double d = v.As<Napi::Number>().DoubleValue();
	return d >= 0 && d <= 4294967295.0 && d == (double)(uint32_t)d;
}

/* Throws a TypeError for an unknown key, a value of the wrong type, or settings of another size. */
bool CheckOptions(Napi::Env env, const Napi::Object &o)
{
	Napi::Array names = o.GetPropertyNames();
	for (uint32_t i = 0; i < names.Length(); i++) {
		std::string name = names.Get(i).ToString();
		const OpenKey *key = nullptr;
		for (const OpenKey &k : kOpenKeys)
			if (name == k.name)
				key = &k;
		if (!key) {
			Napi::TypeError::New(env, "Tracer options: unknown key \"" + name + "\"").ThrowAsJavaScriptException();
			return false;
		}
		Napi::Value v = o.Get(name);
		bool ok = v.IsUndefined() || (key->kind == KEY_U32 ? IsU32(v) : key->kind == KEY_BOOL ? v.IsBoolean() : false);
		if (key->kind == KEY_SETTINGS)
			ok = v.IsBuffer() && v.As<Napi::Buffer<uint8_t>>().Length() == sizeof(struct dt_settings);
		if (!ok) {
			Napi::TypeError::New(env, "Tracer options: " + name + " must be " +
							  (key->kind == KEY_U32	   ? std::string("a u32")
							   : key->kind == KEY_BOOL ? std::string("a boolean")
										   : "a Buffer of " + std::to_string(sizeof(struct dt_settings)) + " bytes (struct dt_settings)"))
				.ThrowAsJavaScriptException();
			return false;
		}
	}
	return true;
}

uint32_t U32(const Napi::Object &o, const char *key, uint32_t def = 0)
{
	Napi::Value v = o.Get(key);
	return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
}

/* settingsLayout(): { size, fields: { name: [offset, element size, elements] } } of struct dt_settings. */
Napi::Value SettingsLayout(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Object fields = Napi::Object::New(env);
	struct Ctx {
		Napi::Env env;
		Napi::Object fields;
	} ctx{ env, fields };
	int size = dt_settings_layout(
		[](void *p, const char *name, uint32_t offset, uint32_t esize, uint32_t count) {
			Ctx *c = static_cast<Ctx *>(p);
			Napi::Array a = Napi::Array::New(c->env, 3);
			a.Set(0u, offset);
			a.Set(1u, esize);
			a.Set(2u, count);
			c->fields.Set(name, a);
		},
		&ctx);
	if (size < 0)
		return ThrowError(env, -size, "addon", "the program's BTF does not describe struct dt_settings", "", "");
	Napi::Object o = Napi::Object::New(env);
	o.Set("size", size);
	o.Set("fields", fields);
	return o;
}

struct Batch {
	void *data;
	size_t records;
};

class Tracer : public Napi::ObjectWrap<Tracer> {
public:
	static Napi::Function Init(Napi::Env env)
	{
		return DefineClass(env, "Tracer",
				   {
					   InstanceMethod("counts", &Tracer::Counts),
					   InstanceMethod("forget", &Tracer::Forget),
					   InstanceMethod("traps", &Tracer::Traps),
					   InstanceMethod("stats", &Tracer::Stats),
					   InstanceMethod("close", &Tracer::Close),
					   InstanceMethod("stack", &Tracer::Stack),
					   InstanceMethod("pause", &Tracer::Pause),
					   InstanceMethod("resume", &Tracer::Resume),
					   InstanceMethod("writeRecords", &Tracer::WriteRecords),
					   InstanceMethod("written", &Tracer::Written),
					   InstanceAccessor("recordSize", &Tracer::RecordSize, nullptr),
					   InstanceAccessor("path", &Tracer::Path, nullptr),
					   InstanceAccessor("target", &Tracer::Target, nullptr),
					   InstanceAccessor("pathTracepoints", &Tracer::PathTracepoints, nullptr),
					   InstanceAccessor("pathFunctions", &Tracer::PathFunctions, nullptr),
					   InstanceAccessor("qdiscReasons", &Tracer::QdiscReasons, nullptr),
					   InstanceAccessor("hardwareTraps", &Tracer::HardwareTraps, nullptr),
					   InstanceAccessor("hardwareTrapsNote", &Tracer::HardwareTrapsNote, nullptr),
					   InstanceAccessor("tried", &Tracer::Tried, nullptr),
				   });
	}

	Tracer(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Tracer>(info)
	{
		Napi::Env env = info.Env();
		if (info.Length() < 1 || !info[0].IsObject()) {
			Napi::TypeError::New(env, "Tracer(config, onBatch?)").ThrowAsJavaScriptException();
			return;
		}
		Napi::Object o = info[0].As<Napi::Object>();
		if (!CheckOptions(env, o))
			return;
		bool onBatch = info.Length() > 1 && info[1].IsFunction();
		dt_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.attach = (int)U32(o, "attach");
		cfg.ring_bytes = U32(o, "ringBytes");
		cfg.count_entries = U32(o, "countEntries");
		cfg.verbose = o.Get("verbose").ToBoolean();
		Napi::Value settings = o.Get("settings");
		if (!settings.IsBuffer()) {
			Napi::TypeError::New(env, "Tracer options: settings is required").ThrowAsJavaScriptException();
			return;
		}
		memcpy(&cfg.settings, settings.As<Napi::Buffer<uint8_t>>().Data(), sizeof(cfg.settings));
		if (!!cfg.settings.emit_events != onBatch) {
			Napi::TypeError::New(env, "Tracer: settings.emit_events must be set exactly when a batch callback is given")
				.ThrowAsJavaScriptException();
			return;
		}

		dt_error err;
		char tried[1024];
		if (dt_tracer_open(&cfg, &t_, &err, tried, sizeof(tried))) {
			ThrowError(env, err.err, err.phase, err.msg, err.log, tried);
			return;
		}
		TrimMalloc();
		tried_ = tried;
		rec_size_ = dt_tracer_record_size(t_);
		path_ = dt_tracer_path(t_);
		target_ = dt_tracer_target(t_);
		path_tps_ = dt_tracer_pkt_path_tps(t_);
		qdisc_reasons_ = dt_tracer_qdisc_reasons(t_);
		hardware_traps_ = dt_tracer_traps_attached(t_);
		hardware_traps_note_ = dt_tracer_traps_note(t_);
		path_fns_ = dt_tracer_fn_count(t_);
		path_fn_skipped_ = dt_tracer_fn_skipped(t_);
		path_fn_ms_ = dt_tracer_fn_attach_ms(t_);
		path_fn_multi_ = dt_tracer_fn_multi(t_);
		Live().insert(this);
		if (cfg.settings.emit_events) {
			tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "droptrace-reader",
							      8 /* batches queued before the reader blocks */, 1, this,
							      [](Napi::Env, Tracer *self) { self->Finished(); });
			reading_ = true;
			thread_ = std::thread([this] { Run(); });
		}
	}

	~Tracer() { Abort(); }

	/* Process exit with a tracer still open: stop without delivering. */
	static void CleanupHook(void *)
	{
		std::set<Tracer *> all = Live();
		for (Tracer *t : all)
			t->Abort();
	}

private:
	static std::set<Tracer *> &Live()
	{
		static std::set<Tracer *> live;
		return live;
	}

	void Run()
	{
		const size_t recs = std::max<size_t>(64, std::min(kBatchRecords, kBatchBytes / rec_size_));
		const size_t bytes = recs * rec_size_;
		void *buf = nullptr;
		int err = 0;
		while (!stop_.load()) {
			if (paused_.load()) {
				/* JS asked us to stop reading: the ring fills and the kernel counts the loss */
				std::this_thread::sleep_for(std::chrono::milliseconds(5));
				continue;
			}
			if (!buf && !(buf = TakeBuffer(bytes))) {
				err = -ENOMEM;
				break;
			}
			int n = dt_tracer_poll(t_, buf, recs, kPollMs);
			if (n < 0) {
				err = n;
				break;
			}
			if (n > 0 && !Write(buf, (size_t)n)) {
				/* freed when the JS callback returns (see Deliver): no need to shrink it */
				Deliver(buf, (size_t)n);
				buf = nullptr;
			}
		}
		/* Nothing more can arrive once detached: drain the rest and snapshot. */
		dt_tracer_detach(t_);
		for (;;) {
			if (!buf && !(buf = TakeBuffer(bytes)))
				break;
			int n = dt_tracer_poll(t_, buf, recs, 0);
			if (n <= 0)
				break;
			if (Write(buf, (size_t)n))
				continue;
			Deliver(buf, (size_t)n);
			buf = nullptr;
		}
		free(buf);
		read_error_ = -err;
		Snapshot();
		tsfn_.Release();
	}

	/*
	 * Reader thread: writes the batch to the recording when JS gave one and the batch holds
	 * nothing new; true when it did. Not before JS has written every batch it was given: the
	 * names of this batch's records are in them, and so are its predecessors' events.
	 */
	bool Write(const void *buf, size_t n)
	{
		if (!writing_.load(std::memory_order_acquire) || writer_.error || dt_record_writer_new(&writer_, buf, n) != 0)
			return false;
		{
			std::unique_lock<std::mutex> lock(js_mu_);
			js_idle_.wait(lock, [this] { return in_js_ == 0 || aborting_.load(); });
		}
		/*
		 * --count: with no batch in JS, every record delivered so far was written (JS writes all of
		 * a batch while under the limit), so the batch that would cross it goes to JS, which writes
		 * what fits and stops the run
		 */
		if (aborting_.load() || (write_limit_ && delivered_.load() + n > write_limit_))
			return false;
		if (dt_record_writer_events(&writer_, buf, n))
			return false; /* a failed write: JS writes this batch, and says the error as its own write fails */
		delivered_ += n;
		return true;
	}

	/* Batch memory: from the buffers JS has given back, else new. Any thread. */
	void *TakeBuffer(size_t bytes)
	{
		{
			std::lock_guard<std::mutex> lock(pool_mu_);
			if (!pool_.empty()) {
				void *p = pool_.back();
				pool_.pop_back();
				return p;
			}
		}
		return malloc(bytes);
	}

	/* A batch JS can no longer reach: kept for the reader (the queue's depth and a few more). */
	void GiveBack(void *p)
	{
		std::lock_guard<std::mutex> lock(pool_mu_);
		if (pool_.size() < 12)
			pool_.push_back(p);
		else
			free(p);
	}

	void Deliver(void *data, size_t n)
	{
		Batch *b = new Batch{ data, n };
		{
			std::lock_guard<std::mutex> lock(js_mu_);
			in_js_++;
		}
		napi_status st = tsfn_.BlockingCall(b, [this](Napi::Env env, Napi::Function cb, Batch *b) {
			delivered_ += b->records;
			/* owned: set when JS keeps the memory after all (detaching failed): the GC frees it then */
			bool *owned = new bool(false);
			void *data = b->data;
			Napi::Buffer<uint8_t> buf = Napi::Buffer<uint8_t>::New(
				env, static_cast<uint8_t *>(data), b->records * rec_size_,
				[](Napi::Env, uint8_t *p, bool *js_owns) {
					if (*js_owns)
						free(p);
					delete js_owns;
				},
				owned);
			Napi::ArrayBuffer ab = buf.ArrayBuffer();
			delete b;
			cb.Call({ buf });
			/*
			 * A batch lives for the callback only (as libbpf's ring-buffer
			 * callbacks' data does): consumers copy what they keep. Once detached
			 * no JS can reach it, and its memory goes straight back to the reader:
			 * left to the GC, batches piled up as external memory, 25 MB of RSS
			 * under a flood of 184-byte events and hundreds of MB of 2 KB --path
			 * ones, before V8 collected them. A batch kept by mistake reads as empty.
			 */
			if (napi_detach_arraybuffer(env, ab) == napi_ok)
				GiveBack(data);
			else
				*owned = true;
			LeftJs();
		});
		if (st != napi_ok) {
			LeftJs();
			/* aborted at exit: these never reached JS; say so in stats */
			dropped_ += n;
			free(data);
			delete b;
		}
	}

	void LeftJs()
	{
		std::lock_guard<std::mutex> lock(js_mu_);
		in_js_--;
		js_idle_.notify_all();
	}

	void Snapshot()
	{
		dt_count_rec *recs = nullptr;
		size_t n = 0;
		if (dt_tracer_counts(t_, &recs, &n) == 0) {
			final_counts_.assign((uint8_t *)recs, (uint8_t *)(recs + n));
			free(recs);
		}
		dt_trap_rec *traps = nullptr;
		if (dt_tracer_traps(t_, &traps, &n) == 0) {
			final_traps_.assign((uint8_t *)traps, (uint8_t *)(traps + n));
			free(traps);
		}
		dt_tracer_stats(t_, final_stats_);
		final_missed_ = dt_tracer_missed(t_);
		have_final_ = true;
	}

	/* JS thread, after the reader released the TSFN and its queue drained. */
	void Finished()
	{
		if (thread_.joinable())
			thread_.join();
		reading_ = false;
		Destroy();
		if (pending_close_) {
			pending_close_->Resolve(Env().Undefined());
			pending_close_.reset();
		}
	}

	void Destroy()
	{
		{
			std::lock_guard<std::mutex> lock(pool_mu_);
			for (void *p : pool_)
				free(p);
			pool_.clear();
		}
		if (t_) {
			dt_tracer_close(t_);
			t_ = nullptr;
		}
		if (writing_.exchange(false)) {
			written_records_ = writer_.records;
			written_bytes_ = writer_.bytes;
			written_error_ = writer_.error;
			dt_record_writer_close(&writer_);
		}
		Live().erase(this);
	}

	void Abort()
	{
		if (reading_) {
			stop_ = true;
			{
				/* queued batches never run now: a reader waiting for them must not */
				std::lock_guard<std::mutex> lock(js_mu_);
				aborting_ = true;
				js_idle_.notify_all();
			}
			dt_tracer_interrupt(t_);
			tsfn_.Abort();
			if (thread_.joinable())
				thread_.join();
			reading_ = false;
		}
		Destroy();
	}

	Napi::Value Close(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		auto deferred = Napi::Promise::Deferred::New(env);
		if (!t_ && !reading_) {
			deferred.Resolve(env.Undefined());
			return deferred.Promise();
		}
		if (reading_) {
			if (!pending_close_) {
				pending_close_.reset(new Napi::Promise::Deferred(deferred));
				stop_ = true;
				dt_tracer_interrupt(t_);
			} else {
				return pending_close_->Promise();
			}
			return deferred.Promise();
		}
		dt_tracer_detach(t_);
		Snapshot();
		Destroy();
		deferred.Resolve(env.Undefined());
		return deferred.Promise();
	}

	Napi::Value Counts(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		if (!t_ || have_final_) {
			return Napi::Buffer<uint8_t>::Copy(env, final_counts_.data(), final_counts_.size());
		}
		dt_count_rec *recs = nullptr;
		size_t n = 0;
		int err = dt_tracer_counts(t_, &recs, &n);
		if (err)
			return ThrowError(env, -err, "read", "reading the count map failed");
		return RecsBuffer(env, recs, n);
	}

	/* traps() -> Buffer of dt_trap_rec: the devlink trap counts (empty where not attached) */
	Napi::Value Traps(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		if (!t_ || have_final_)
			return Napi::Buffer<uint8_t>::Copy(env, final_traps_.data(), final_traps_.size());
		dt_trap_rec *recs = nullptr;
		size_t n = 0;
		int err = dt_tracer_traps(t_, &recs, &n);
		if (err)
			return ThrowError(env, -err, "read", "reading the trap map failed");
		Napi::Value out = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t *>(recs), n * sizeof(dt_trap_rec));
		free(recs);
		return out;
	}

	/* Hands malloc'ed count records to JS, which frees them with the Buffer. */
	static Napi::Value RecsBuffer(Napi::Env env, dt_count_rec *recs, size_t n)
	{
		if (n == 0) {
			/* an external buffer over no memory would be detached in JS */
			free(recs);
			return Napi::Buffer<uint8_t>::New(env, 0);
		}
		return Napi::Buffer<uint8_t>::New(env, reinterpret_cast<uint8_t *>(recs), n * sizeof(dt_count_rec),
						  [](Napi::Env, uint8_t *p) { free(p); });
	}

	/* forget(keys: Buffer of dt_count_key) -> Buffer of dt_count_rec: the final counts of the keys removed */
	Napi::Value Forget(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		if (!info[0].IsBuffer())
			return ThrowError(env, EINVAL, "forget", "forget() takes a Buffer of count keys");
		auto keys = info[0].As<Napi::Buffer<uint8_t>>();
		if (keys.Length() % sizeof(dt_count_key))
			return ThrowError(env, EINVAL, "forget", "forget(): the buffer is not a whole number of count keys");
		if (!t_ || have_final_)
			return Napi::Buffer<uint8_t>::New(env, 0);
		dt_count_rec *recs = nullptr;
		size_t n = 0;
		int err = dt_tracer_forget(t_, reinterpret_cast<const dt_count_key *>(keys.Data()), keys.Length() / sizeof(dt_count_key), &recs, &n);
		if (err)
			return ThrowError(env, -err, "forget", "removing keys from the count map failed");
		return RecsBuffer(env, recs, n);
	}

	Napi::Value Stats(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		uint64_t s[DT_STAT_MAX] = {};
		uint64_t missed = final_missed_;
		if (t_ && !have_final_) {
			int err = dt_tracer_stats(t_, s);
			if (err)
				return ThrowError(env, -err, "read", "reading the loss counters failed");
			missed = dt_tracer_missed(t_);
		} else {
			memcpy(s, final_stats_, sizeof(s));
		}
		Napi::Object o = Napi::Object::New(env);
		o.Set("delivered", Napi::Number::New(env, (double)delivered_.load()));
		o.Set("lost", Napi::Number::New(env, (double)s[DT_STAT_RB_LOST]));
		o.Set("mapFull", Napi::Number::New(env, (double)s[DT_STAT_MAP_FULL]));
		o.Set("seen", Napi::Number::New(env, (double)s[DT_STAT_SEEN]));
		o.Set("droppedInProcess", Napi::Number::New(env, (double)dropped_.load()));
		o.Set("stackFailures", Napi::Number::New(env, (double)s[DT_STAT_STACK_FAIL]));
		o.Set("sampledOut", Napi::Number::New(env, (double)s[DT_STAT_SAMPLED]));
		o.Set("missed", Napi::Number::New(env, (double)missed));
		o.Set("readError", Napi::Number::New(env, read_error_));
		o.Set("closed", Napi::Boolean::New(env, t_ == nullptr || have_final_));
		return o;
	}

	/*
	 * writeRecords(fd, limit): from now on the reader thread writes the batches that hold nothing
	 * new to this recording itself, as events blocks (JS wrote the file's header and meta block),
	 * as long as the events delivered stay within limit (0: no limit). Throws when the descriptor
	 * cannot be taken; false when this tracer sends no events.
	 */
	Napi::Value WriteRecords(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		if (!info[0].IsNumber() || !info[1].IsNumber())
			return ThrowError(env, EINVAL, "record", "writeRecords() takes a file descriptor and a limit");
		if (!reading_ || !t_ || writing_.load())
			return Napi::Boolean::New(env, false);
		write_limit_ = (uint64_t)info[1].As<Napi::Number>().DoubleValue();
		int err = dt_record_writer_open(&writer_, info[0].As<Napi::Number>().Int32Value(), rec_size_);
		if (err)
			return ThrowError(env, -err, "record", "taking the recording's descriptor failed");
		writing_.store(true, std::memory_order_release);
		return Napi::Boolean::New(env, true);
	}

	/* written() -> { records, bytes, errno }: what the reader thread wrote to the recording */
	Napi::Value Written(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		bool live = writing_.load(std::memory_order_acquire);
		/* read while the thread may write: a count a batch behind is what a progress line shows */
		uint64_t records = live ? __atomic_load_n(&writer_.records, __ATOMIC_RELAXED) : written_records_;
		uint64_t bytes = live ? __atomic_load_n(&writer_.bytes, __ATOMIC_RELAXED) : written_bytes_;
		int error = live ? __atomic_load_n(&writer_.error, __ATOMIC_RELAXED) : written_error_;
		Napi::Object o = Napi::Object::New(env);
		o.Set("records", Napi::Number::New(env, (double)records));
		o.Set("bytes", Napi::Number::New(env, (double)bytes));
		o.Set("errno", Napi::Number::New(env, error));
		return o;
	}

	/* Backpressure from JS (a slow stdout): stop draining until resume(). */
	Napi::Value Pause(const Napi::CallbackInfo &info)
	{
		paused_ = true;
		return info.Env().Undefined();
	}
	Napi::Value Resume(const Napi::CallbackInfo &info)
	{
		paused_ = false;
		return info.Env().Undefined();
	}

	Napi::Value RecordSize(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), (double)rec_size_); }

	/* Kernel stack frames by id; after close() the map is gone and this returns []. */
	Napi::Value Stack(const Napi::CallbackInfo &info)
	{
		Napi::Env env = info.Env();
		uint64_t ips[DT_STACK_DEPTH];
		int n = 0;
		if (t_ && info.Length() > 0 && info[0].IsNumber())
			n = dt_tracer_stack(t_, info[0].As<Napi::Number>().Int32Value(), ips);
		return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t *>(ips), n * sizeof(uint64_t));
	}

	Napi::Value Path(const Napi::CallbackInfo &info) { return Napi::String::New(info.Env(), path()); }
	Napi::Value Target(const Napi::CallbackInfo &info) { return Napi::String::New(info.Env(), target()); }
	Napi::Value Tried(const Napi::CallbackInfo &info) { return Napi::String::New(info.Env(), tried_); }
	Napi::Value PathTracepoints(const Napi::CallbackInfo &info) { return Napi::String::New(info.Env(), path_tps_); }
	Napi::Value QdiscReasons(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), qdisc_reasons_); }
	Napi::Value HardwareTraps(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), hardware_traps_); }
	Napi::Value HardwareTrapsNote(const Napi::CallbackInfo &info) { return Napi::String::New(info.Env(), hardware_traps_note_); }
	/* { count, skipped, attachMs, via }: the kernel functions --path functions hooked, how many
	 * kprobes refused, how long it took, and with what */
	Napi::Value PathFunctions(const Napi::CallbackInfo &info)
	{
		Napi::Object o = Napi::Object::New(info.Env());
		o.Set("count", Napi::Number::New(info.Env(), (double)path_fns_));
		o.Set("skipped", Napi::Number::New(info.Env(), (double)path_fn_skipped_));
		o.Set("attachMs", Napi::Number::New(info.Env(), path_fn_ms_));
		o.Set("via", Napi::String::New(info.Env(), path_fn_multi_ ? "kprobe-multi" : "kprobe"));
		return o;
	}

	std::string path()
	{
		if (t_)
			path_ = dt_tracer_path(t_);
		return path_;
	}
	std::string target()
	{
		if (t_)
			target_ = dt_tracer_target(t_);
		return target_;
	}

	dt_tracer *t_ = nullptr;
	std::string path_tps_;
	bool qdisc_reasons_ = false;
	bool hardware_traps_ = false;
	std::string hardware_traps_note_;
	std::mutex pool_mu_;
	std::vector<void *> pool_; /* batch buffers JS gave back (all of the same size) */
	size_t path_fns_ = 0;
	size_t path_fn_skipped_ = 0;
	double path_fn_ms_ = 0;
	int path_fn_multi_ = 0;
	size_t rec_size_ = sizeof(dt_event);
	std::thread thread_;
	std::atomic<bool> stop_{ false };
	std::atomic<bool> paused_{ false };
	bool reading_ = false;
	Napi::ThreadSafeFunction tsfn_;
	std::unique_ptr<Napi::Promise::Deferred> pending_close_;
	std::atomic<uint64_t> delivered_{ 0 };
	/* the recording the reader thread writes to (writeRecords), and what it wrote once closed */
	std::atomic<bool> writing_{ false };
	dt_record_writer writer_ = {};
	uint64_t write_limit_ = 0; /* record --count: events delivered in all (0: none) */
	uint64_t written_records_ = 0, written_bytes_ = 0;
	int written_error_ = 0;
	/* batches handed to JS and not yet returned; the writer waits for none */
	std::mutex js_mu_;
	std::condition_variable js_idle_;
	size_t in_js_ = 0;
	std::atomic<bool> aborting_{ false };
	std::atomic<uint64_t> dropped_{ 0 };
	int read_error_ = 0;
	bool have_final_ = false;
	std::vector<uint8_t> final_counts_;
	std::vector<uint8_t> final_traps_;
	uint64_t final_stats_[DT_STAT_MAX] = {};
	uint64_t final_missed_ = 0;
	std::string tried_, path_, target_;
};

Napi::Value Probe(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	dt_kernel k;
	int err = dt_probe_kernel(&k);
	Napi::Object o = Napi::Object::New(env);
	o.Set("btfError", Napi::Number::New(env, err < 0 ? -err : 0));
	o.Set("btf", Napi::Boolean::New(env, k.has_btf));
	o.Set("tpBtf", Napi::Boolean::New(env, k.has_tp_btf));
	o.Set("tpHasReason", Napi::Boolean::New(env, k.tp_has_reason));
	o.Set("tpHasRxSk", Napi::Boolean::New(env, k.tp_has_rx_sk));
	o.Set("qdiscDrop", Napi::Boolean::New(env, k.has_qdisc_drop && k.qdisc_drop_reason >= 0));
	o.Set("devlinkTraps", Napi::Boolean::New(env, k.has_devlink_trap));
	o.Set("dropFunction", k.fn_name ? Napi::String::New(env, k.fn_name) : env.Null());
	o.Set("kprobes", Napi::Boolean::New(env, k.has_kprobes));
	o.Set("consumedReason", Napi::Number::New(env, k.consumed_reason));
	o.Set("reasonCount", Napi::Number::New(env, k.reason_count));
	Napi::Array tps = Napi::Array::New(env);
	for (int i = 0, n = 0; i < DT_PKT_PATH_TPS; i++)
		if (k.pkt_path_tps >> i & 1)
			tps.Set(n++, Napi::String::New(env, dt_pkt_path_tps[i]));
	o.Set("pathTracepoints", tps);
	o.Set("kprobeMulti", Napi::Boolean::New(env, k.has_kprobe_multi));
	o.Set("kprobeFuncIp", Napi::Boolean::New(env, k.kprobe_func_ip));
	return o;
}

/* [[value, name], …] from one of the loader's enumerators, or null when it fails. */
Napi::Value Pairs(Napi::Env env, int (*each)(void (*fn)(void *, int, const char *), void *))
{
	Napi::Array arr = Napi::Array::New(env);
	struct Ctx {
		Napi::Env env;
		Napi::Array arr;
	} ctx{ env, arr };
	int err = each(
		[](void *p, int value, const char *name) {
			Ctx *c = static_cast<Ctx *>(p);
			Napi::Array pair = Napi::Array::New(c->env, 2);
			pair.Set(0u, Napi::Number::New(c->env, value));
			pair.Set(1u, Napi::String::New(c->env, name));
			c->arr.Set(c->arr.Length(), pair);
		},
		&ctx);
	if (err)
		return env.Null();
	return arr;
}

Napi::Value Reasons(const Napi::CallbackInfo &info)
{
	return Pairs(info.Env(), dt_reasons);
}

Napi::Value ReasonSubsystems(const Napi::CallbackInfo &info)
{
	return Pairs(info.Env(), dt_reason_subsystems);
}

#define FIELD(obj, type, f)                                                                     \
	do {                                                                                    \
		Napi::Array pair = Napi::Array::New(env, 2);                                    \
		pair.Set(0u, Napi::Number::New(env, offsetof(type, f)));                         \
		pair.Set(1u, Napi::Number::New(env, sizeof(((type *)0)->f)));                     \
		obj.Set(#f, pair);                                                              \
	} while (0)

/* A table: every field of the shared records and every constant TypeScript mirrors. */
Napi::Value Layout(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	Napi::Object ev = Napi::Object::New(env);
	FIELD(ev, dt_event, ts_ns);
	FIELD(ev, dt_event, location);
	FIELD(ev, dt_event, reason);
	FIELD(ev, dt_event, cpu);
	FIELD(ev, dt_event, pid);
	FIELD(ev, dt_event, len);
	FIELD(ev, dt_event, ifindex);
	FIELD(ev, dt_event, iif);
	FIELD(ev, dt_event, netns);
	FIELD(ev, dt_event, mark);
	FIELD(ev, dt_event, ethertype);
	FIELD(ev, dt_event, l4proto);
	FIELD(ev, dt_event, ipver);
	FIELD(ev, dt_event, sport);
	FIELD(ev, dt_event, dport);
	FIELD(ev, dt_event, tcp_flags);
	FIELD(ev, dt_event, icmp_type);
	FIELD(ev, dt_event, icmp_code);
	FIELD(ev, dt_event, flags);
	FIELD(ev, dt_event, saddr);
	FIELD(ev, dt_event, daddr);
	FIELD(ev, dt_event, ifname);
	FIELD(ev, dt_event, comm);
	FIELD(ev, dt_event, stack_id);
	FIELD(ev, dt_event, cap_len);
	FIELD(ev, dt_event, cap_from);
	FIELD(ev, dt_event, pad1);
	FIELD(ev, dt_event, orig_len);
	FIELD(ev, dt_event, inner_saddr);
	FIELD(ev, dt_event, inner_daddr);
	FIELD(ev, dt_event, tunnel_id);
	FIELD(ev, dt_event, inner_sport);
	FIELD(ev, dt_event, inner_dport);
	FIELD(ev, dt_event, tunnel);
	FIELD(ev, dt_event, inner_ipver);
	FIELD(ev, dt_event, inner_l4proto);
	FIELD(ev, dt_event, inner_flags);
	FIELD(ev, dt_event, inner_icmp_type);
	FIELD(ev, dt_event, inner_icmp_code);
	FIELD(ev, dt_event, inner_tcp_flags);
	FIELD(ev, dt_event, pad2);
	FIELD(ev, dt_event, sk_cgroup);
	FIELD(ev, dt_event, sk_ino);
	FIELD(ev, dt_event, sk_uid);
	FIELD(ev, dt_event, sk_addr);
	FIELD(ev, dt_event, sk_port);
	FIELD(ev, dt_event, sk_family);
	FIELD(ev, dt_event, sk_protocol);
	FIELD(ev, dt_event, pad3);
	Napi::Object cr = Napi::Object::New(env);
	FIELD(cr, dt_count_rec, key.location);
	FIELD(cr, dt_count_rec, key.reason);
	FIELD(cr, dt_count_rec, key.ifindex);
	FIELD(cr, dt_count_rec, key.netns);
	FIELD(cr, dt_count_rec, val.packets);
	FIELD(cr, dt_count_rec, val.bytes);
	Napi::Object pp = Napi::Object::New(env);
	FIELD(pp, dt_pkt_path, steps);
	FIELD(pp, dt_pkt_path, received);
	FIELD(pp, dt_pkt_path, dst_input);
	FIELD(pp, dt_pkt_path, dst_output);
	FIELD(pp, dt_pkt_path, step);
	Napi::Object st = Napi::Object::New(env);
	FIELD(st, dt_step, ts_ns);
	FIELD(st, dt_step, ifindex);
	FIELD(st, dt_step, netns);
	FIELD(st, dt_step, detail);
	FIELD(st, dt_step, result);
	FIELD(st, dt_step, cpu);
	FIELD(st, dt_step, kind);
	FIELD(st, dt_step, flags);
	FIELD(st, dt_step, pad);
	FIELD(st, dt_step, ifname);
	FIELD(st, dt_step, fn);
	Napi::Object tr = Napi::Object::New(env);
	FIELD(tr, dt_trap_rec, key.devlink);
	FIELD(tr, dt_trap_rec, key.trap);
	FIELD(tr, dt_trap_rec, key.ifindex);
	FIELD(tr, dt_trap_rec, key.netns);
	FIELD(tr, dt_trap_rec, val.packets);
	FIELD(tr, dt_trap_rec, val.bytes);
	FIELD(tr, dt_trap_rec, val.type);
	FIELD(tr, dt_trap_rec, val.trap);
	FIELD(tr, dt_trap_rec, val.group);
	FIELD(tr, dt_trap_rec, val.bus);
	FIELD(tr, dt_trap_rec, val.device);
	FIELD(tr, dt_trap_rec, val.ifname);
	Napi::Object flags = Napi::Object::New(env);
	flags.Set("L3", DT_F_L3);
	flags.Set("L4", DT_F_L4);
	flags.Set("REASON", DT_F_REASON);
	flags.Set("SK", DT_F_SK);
	flags.Set("PATH", DT_F_PATH);
	flags.Set("RX_SK", DT_F_RX_SK);
	/* every constant TypeScript mirrors, so layout.test.ts can hold each side to the other */
	auto consts = [&](std::initializer_list<std::pair<const char *, int>> kv) {
		Napi::Object c = Napi::Object::New(env);
		for (auto &p : kv)
			c.Set(p.first, p.second);
		return c;
	};
	Napi::Object constants = Napi::Object::New(env);
	constants.Set("TUNNEL", consts({ { "NONE", DT_TUN_NONE }, { "VXLAN", DT_TUN_VXLAN }, { "GENEVE", DT_TUN_GENEVE } }));
	constants.Set("IFLAG", consts({ { "L3", DT_IF_L3 }, { "L4", DT_IF_L4 }, { "NOT_LINEAR", DT_IF_NOT_LINEAR } }));
	constants.Set("CAP", consts({ { "NONE", DT_CAP_NONE }, { "MAC", DT_CAP_MAC }, { "NETWORK", DT_CAP_NETWORK } }));
	constants.Set("ATTACH", consts({ { "auto", DT_ATTACH_AUTO },
					  { "tracepoint", DT_ATTACH_TRACEPOINT },
					  { "fentry", DT_ATTACH_FENTRY },
					  { "kprobe", DT_ATTACH_KPROBE },
					  { "tp_btf", DT_ATTACH_TP_BTF },
					  { "raw_tp", DT_ATTACH_RAW_TP } }));
	constants.Set("STEP", consts({ { "XMIT_QUEUE", DT_STEP_XMIT_QUEUE },
					{ "XMIT", DT_STEP_XMIT },
					{ "NETIF_RX", DT_STEP_NETIF_RX },
					{ "GRO", DT_STEP_GRO },
					{ "RX", DT_STEP_RX },
					{ "QDISC_ENQ", DT_STEP_QDISC_ENQ },
					{ "QDISC_DEQ", DT_STEP_QDISC_DEQ },
					{ "FIB", DT_STEP_FIB },
					{ "FIB6", DT_STEP_FIB6 },
					{ "FUNC", DT_STEP_FUNC } }));
	constants.Set("PKT_PATH", consts({ { "off", DT_PKT_PATH_OFF },
					    { "tracepoints", DT_PKT_PATH_TRACEPOINTS },
					    { "functions", DT_PKT_PATH_FUNCTIONS } }));
	constants.Set("STEP_FLAG", consts({ { "REVERSE", DT_SF_REVERSE } }));
	constants.Set("TRAP", consts({ { "DROP", DT_TRAP_DROP }, { "EXCEPTION", DT_TRAP_EXCEPTION } }));
	constants.Set("SLOTS", consts({ { "subsystemReasons", DT_REASON_HI },
					 { "tunnelPorts", DT_TUN_PORTS },
					 { "hot", DT_HOT_SLOTS },
					 { "maxSnaplen", DT_MAX_SNAPLEN },
					 { "steps", DT_STEPS } }));
	constants.Set("RECORDING", consts({ { "blockSync", (int)DT_BLOCK_SYNC },
					     { "blockHeaderSize", DT_BLOCK_HEADER_SIZE },
					     { "eventsBlock", DT_BLOCK_EVENTS } }));
	Napi::Object o = Napi::Object::New(env);
	o.Set("constants", constants);
	o.Set("eventSize", Napi::Number::New(env, sizeof(dt_event)));
	o.Set("event", ev);
	o.Set("countSize", Napi::Number::New(env, sizeof(dt_count_rec)));
	o.Set("count", cr);
	o.Set("pathSize", Napi::Number::New(env, sizeof(dt_pkt_path)));
	o.Set("path", pp);
	o.Set("stepSize", Napi::Number::New(env, sizeof(dt_step)));
	o.Set("step", st);
	o.Set("trapSize", Napi::Number::New(env, sizeof(dt_trap_rec)));
	o.Set("trap", tr);
	o.Set("flags", flags);
	return o;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo &info)
{
	if (info.Length() > 0 && info[0].IsFunction())
		g_error_class = Napi::Persistent(info[0].As<Napi::Function>());
	return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
	TuneMalloc();
	exports.Set("Tracer", Tracer::Init(env));
	exports.Set("probe", Napi::Function::New(env, Probe));
	exports.Set("reasons", Napi::Function::New(env, Reasons));
	exports.Set("reasonSubsystems", Napi::Function::New(env, ReasonSubsystems));
	exports.Set("layout", Napi::Function::New(env, Layout));
	exports.Set("settingsLayout", Napi::Function::New(env, SettingsLayout));
	exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
	napi_add_env_cleanup_hook(env, Tracer::CleanupHook, nullptr);
	return exports;
}

} // namespace

NODE_API_MODULE(droptrace, Init)
